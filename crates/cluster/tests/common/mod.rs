//! Helpers shared by the integration tests: a fast cluster, clients, waiting, open-loop load.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prescale_cluster::{Cluster, ClusterConfig, PodConfig};
use prescale_core::{Clock, ScaledClock, SharedClock, SystemClock};

/// Cluster-clock seconds per real second in the tests: a 45 s startup takes 0.75 s.
pub const TIME_SCALE: f64 = 60.0;

/// A cluster on a 60x clock with default (45 s +- 5 s) startup delays.
pub async fn start_cluster() -> Cluster {
    start_with(|_| {}).await
}

/// A cluster on a 60x clock, with `adjust` applied to the config first.
pub async fn start_with(adjust: impl FnOnce(&mut ClusterConfig)) -> Cluster {
    let clock: SharedClock = Arc::new(ScaledClock::new(SystemClock.now(), TIME_SCALE));
    let mut config = ClusterConfig::new(clock);
    config.pod = PodConfig { service_time: Duration::from_millis(20), ..PodConfig::default() };
    adjust(&mut config);
    Cluster::start(config).await.expect("cluster starts")
}

/// A kube client for the cluster (installs the ring crypto provider first).
pub fn kube_client(cluster: &Cluster) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(cluster.api_url().parse().expect("api url"));
    kube::Client::try_from(config).expect("kube client")
}

/// A plain HTTP client.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("reqwest client")
}

/// Poll `check` every 20 ms until it returns true; panic with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What an open-loop load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Latency of every answered request, seconds, sorted.
    pub latencies: Vec<f64>,
    /// Status code of every answered request.
    pub codes: Vec<u16>,
    /// Requests that failed without an answer.
    pub failures: usize,
}

impl LoadResult {
    /// The q-quantile of latencies (0..=1).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let idx = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[idx]
    }

    /// Answers with status `code`.
    pub fn count(&self, code: u16) -> usize {
        self.codes.iter().filter(|c| **c == code).count()
    }
}

/// Send GETs to `url` at `rps` for `duration`, each on schedule whatever the earlier ones do
/// (open loop, so a slow server does not slow the arrivals).
pub async fn open_loop(client: &reqwest::Client, url: &str, rps: f64, duration: Duration) -> LoadResult {
    let total = (rps * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rps);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let client = client.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            // Latency from the scheduled time: no coordinated omission.
            let r = client.get(&url).timeout(Duration::from_secs(10)).send().await;
            let code = match r {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    Some(code)
                }
                Err(_) => None,
            };
            (due.elapsed().as_secs_f64(), code)
        }));
    }
    let mut result = LoadResult::default();
    for t in tasks {
        let (latency, code) = t.await.expect("load task");
        match code {
            Some(c) => {
                result.latencies.push(latency);
                result.codes.push(c);
            }
            None => result.failures += 1,
        }
    }
    result.latencies.sort_by(f64::total_cmp);
    result
}
