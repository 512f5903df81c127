//! Configuration of the embedded cluster.

use std::sync::Arc;
use std::time::Duration;

use prescale_core::{SharedClock, SystemClock};

use crate::pod::PodConfig;

/// Annotation the cluster sets on every pod: the loopback port of its HTTP server
/// (which also serves `/metrics`); the pod's IP is `127.0.0.1`.
pub const METRICS_PORT_ANNOTATION: &str = "prescale.dev/metrics-port";
/// The conventional scrape-port annotation, set on every pod to the same port as
/// [`METRICS_PORT_ANNOTATION`].
pub const PROMETHEUS_PORT_ANNOTATION: &str = "prometheus.io/port";
/// The conventional scrape annotation, `"true"` on every pod.
pub const PROMETHEUS_SCRAPE_ANNOTATION: &str = "prometheus.io/scrape";
/// Pod-template annotation overriding the startup delay, in cluster-clock seconds.
pub const STARTUP_DELAY_ANNOTATION: &str = "prescale.dev/startup-delay-seconds";
/// Pod-template annotation overriding [`PodConfig::workers`].
pub const WORKERS_ANNOTATION: &str = "prescale.dev/workers";
/// Pod-template annotation overriding [`PodConfig::service_time`], in milliseconds.
pub const SERVICE_TIME_ANNOTATION: &str = "prescale.dev/service-time-ms";
/// Pod-template annotation overriding [`PodConfig::queue_capacity`].
pub const QUEUE_CAPACITY_ANNOTATION: &str = "prescale.dev/queue-capacity";
/// Annotation the cluster sets on every Service: the loopback port it listens on.
pub const SERVICE_PORT_ANNOTATION: &str = "prescale.dev/service-port";

/// How a Service picks a Ready pod for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalancing {
    /// The pod with the fewest requests in flight; ties go round robin.
    #[default]
    LeastLoaded,
    /// Each pod in turn.
    RoundRobin,
}

/// Everything [`crate::Cluster::start`] needs.
///
/// Delays and periods are in cluster-clock time (compressed by a `ScaledClock`);
/// request service times in [`PodConfig`] are real time.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The clock every controller and delay runs on.
    pub clock: SharedClock,
    /// Loopback port of the API server; 0 picks a free one.
    pub api_port: u16,
    /// Time from a pod's start to Ready.
    pub startup_delay: Duration,
    /// Each pod's startup delay is drawn uniformly from `startup_delay ± startup_jitter`.
    pub startup_jitter: Duration,
    /// Grace period of a deleted pod when its spec gives none: in-flight requests may
    /// finish within it.
    pub termination_grace: Duration,
    /// Capacity model of every pod (pod-template annotations may override parts).
    pub pod: PodConfig,
    /// How Services balance requests.
    pub load_balancing: LoadBalancing,
    /// Default HPA sync period (Kubernetes: 15 s).
    pub hpa_sync_period: Duration,
    /// Seed of generated names, uids and startup jitter.
    pub seed: u64,
}

impl ClusterConfig {
    /// Defaults (45 s ± 5 s startup, 2-worker pods at 20 ms per request) on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            api_port: 0,
            startup_delay: Duration::from_secs(45),
            startup_jitter: Duration::from_secs(5),
            termination_grace: Duration::from_secs(30),
            pod: PodConfig::default(),
            load_balancing: LoadBalancing::default(),
            hpa_sync_period: Duration::from_secs(15),
            seed: 0x5eed,
        }
    }

    /// Check the values; the error names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.pod.validate()?;
        if self.hpa_sync_period.is_zero() {
            return Err("hpa_sync_period must be longer than zero".to_string());
        }
        Ok(())
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}
