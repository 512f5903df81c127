//! The typed configuration produced by validation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use prescale_core::WorkloadRef;
use serde::Serialize;

/// The whole daemon configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaemonConfig {
    /// Time between two ticks of the loop (default 30 s).
    pub tick_interval: Duration,
    /// Time between two full model fits (default 6 h; a fit also runs at start).
    pub refit_interval: Duration,
    /// Workloads handled at once within a tick (default 4).
    pub concurrency: usize,
    /// How much history the daemon keeps per workload (default 14 days).
    pub history_retention: Duration,
    /// How many decisions the decisions log keeps (default 500).
    pub decisions_log: usize,
    /// The Prediction API.
    pub api: ApiConfig,
    /// How to reach Kubernetes.
    pub kubernetes: KubernetesConnection,
    /// Where metrics come from.
    pub metrics: MetricsConfig,
    /// The LLM endpoint, when any workload uses the `llm` predictor.
    pub llm: Option<LlmSettings>,
    /// Where accepted events are kept.
    pub state: StateStore,
    /// Leader election among replicas of the daemon.
    pub leader_election: LeaderElection,
    /// The workloads, in file order.
    pub workloads: Vec<WorkloadConfig>,
}

impl DaemonConfig {
    /// The configuration of `workload`, if it is configured.
    pub fn workload(&self, workload: &WorkloadRef) -> Option<&WorkloadConfig> {
        self.workloads.iter().find(|w| &w.workload == workload)
    }
}

/// Where a secret (API token, LLM key) is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// A file holding the secret (surrounding whitespace is ignored).
    File(PathBuf),
    /// An environment variable holding the secret.
    Env(String),
}

/// The Prediction API's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiConfig {
    /// Listen address (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// Where the bearer token for mutating requests comes from (`api.token_file` or `api.token_env`).
    pub token: SecretSource,
    /// Largest accepted request body in bytes (default 65,536).
    pub max_body_bytes: usize,
}

/// How the daemon connects to Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubernetesConnection {
    /// In-cluster service account when running in a pod, else the kubeconfig (kube-rs' inference).
    Auto,
    /// The pod's service account.
    InCluster,
    /// A kubeconfig file (default `$KUBECONFIG` or `~/.kube/config`) and optional context.
    Kubeconfig {
        /// The kubeconfig file, if not the default.
        path: Option<PathBuf>,
        /// The context, if not the current one.
        context: Option<String>,
    },
}

/// Where metrics come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricsSource {
    /// A Prometheus server's HTTP API.
    Prometheus {
        /// Base URL, e.g. `http://prometheus.monitoring:9090`.
        url: String,
    },
    /// Scrape each Ready pod's Prometheus-text endpoint directly.
    PodScrape {
        /// The pods' metrics port when the pod has no port annotation.
        port: u16,
        /// Pod annotation holding the metrics port (default `prometheus.io/port`).
        port_annotation: String,
        /// The pods' metrics path.
        path: String,
    },
    /// No metrics: forecasts come from `history_file` and events only, and no decision scales down.
    None,
}

/// Metric collection settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsConfig {
    /// The source.
    pub source: MetricsSource,
    /// Step of the history series (default 1 min).
    pub step: Duration,
    /// A newest point older than this counts as missing (default 3 min).
    pub stale_after: Duration,
    /// Deadline of one metrics query (default 10 s).
    pub timeout: Duration,
    /// Read pod CPU and memory from `metrics.k8s.io` (default true); reported, never decisive.
    pub pod_resources: bool,
}

/// Leader election through a `coordination.k8s.io/v1` Lease: only the holder acts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderElection {
    /// Whether to elect a leader (default true). Without election every replica acts.
    pub enabled: bool,
    /// Namespace of the Lease; default: the pod's own namespace in a cluster, else `default`.
    pub namespace: Option<String>,
    /// Name of the Lease (default `prescaled`).
    pub name: String,
    /// This replica's identity; default: the host name with a random suffix.
    pub identity: Option<String>,
    /// How long a holder's claim lasts without renewal (default 15 s).
    pub lease_duration: Duration,
    /// How often the holder renews and a follower retries (default 5 s).
    pub renew_interval: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: None,
            name: "prescaled".into(),
            identity: None,
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
        }
    }
}

/// LLM endpoint settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmSettings {
    /// Base URL of an OpenAI-compatible API.
    pub endpoint: String,
    /// Model name.
    pub model: String,
    /// Where the API key comes from, if the endpoint needs one.
    pub api_key: Option<SecretSource>,
    /// Connection timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Timeout of one request (default 20 s).
    pub request_timeout: Duration,
    /// Upper bound of the whole LLM step (default 20 s; the step also stays within a third of the tick).
    pub max_deadline: Duration,
}

impl LlmSettings {
    /// Settings for `model` at `endpoint` with the default timeouts (5 s connect, 20 s per
    /// request, 20 s for the whole step).
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>, api_key: Option<SecretSource>) -> Self {
        Self {
            endpoint: endpoint.into(),
            model: model.into(),
            api_key,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            max_deadline: Duration::from_secs(20),
        }
    }
}

/// Where accepted events are kept so they survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateStore {
    /// JSON files in a local directory.
    File {
        /// The directory.
        dir: PathBuf,
    },
    /// A ConfigMap in the cluster.
    Configmap {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// What the daemon may change for a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Forecast, decide and explain; change nothing (the default).
    ForecastOnly,
    /// Raise the existing HPA's `spec.minReplicas`.
    HpaFloor,
    /// Set the Deployment's replicas through the scale subresource.
    Direct,
}

impl Mode {
    /// Every mode's configuration name.
    pub const NAMES: [&'static str; 3] = ["forecast-only", "hpa-floor", "direct"];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ForecastOnly => "forecast-only",
            Mode::HpaFloor => "hpa-floor",
            Mode::Direct => "direct",
        }
    }
}

/// Which predictor a workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PredictorKind {
    /// The event-free statistical baseline.
    #[serde(rename = "statistical")]
    Statistical,
    /// The baseline times learned or declared event uplifts (the default).
    #[serde(rename = "statistical+events")]
    StatisticalEvents,
    /// The baseline adjusted by the LLM, with `statistical+events` as its fallback.
    #[serde(rename = "llm")]
    Llm,
}

impl PredictorKind {
    /// Every predictor's configuration name.
    pub const NAMES: [&'static str; 3] = ["statistical", "statistical+events", "llm"];
}

/// A value given in the configuration or learned from history (`auto`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting<T> {
    /// The configured value.
    Fixed(T),
    /// Learned from history at each fit.
    Auto,
}

impl<T: Copy> Setting<T> {
    /// The fixed value, or `learned` for `auto`.
    pub fn or_learned(self, learned: T) -> T {
        match self {
            Setting::Fixed(v) => v,
            Setting::Auto => learned,
        }
    }
}

/// One workload's configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadConfig {
    /// The Deployment.
    pub workload: WorkloadRef,
    /// What the daemon may change.
    pub mode: Mode,
    /// Lowest replica count the daemon will ask for.
    pub min_replicas: u32,
    /// Highest replica count the daemon will ask for.
    pub max_replicas: u32,
    /// Requests per second one pod serves at 100 % utilization, or learned.
    pub capacity_per_pod: Setting<f64>,
    /// Utilization the replica count aims for (default 0.7).
    pub target_utilization: f64,
    /// Time from scale-up to a Ready pod, or learned.
    pub startup: Setting<Duration>,
    /// Lead added to the startup time, so pods are Ready a little before the load (default 30 s).
    pub safety_buffer: Duration,
    /// Scale-down stabilization window (default 5 min).
    pub stabilization_window: Duration,
    /// Largest fraction of replicas removed in one step (default 0.25).
    pub max_scale_down_fraction: f64,
    /// A target within this fraction of the current replicas changes nothing (default 0.1).
    pub tolerance: f64,
    /// Time after a scale-down before the next one (default 2 min).
    pub scale_down_cooldown: Duration,
    /// How far ahead to forecast (default 60 min).
    pub horizon: Duration,
    /// PromQL per signal name (`request_rate`, `cpu`, ...) replacing the defaults.
    pub signals: std::collections::BTreeMap<String, String>,
    /// Event calendar files.
    pub events: Vec<PathBuf>,
    /// A CSV (`timestamp,requests`) that seeds the history.
    pub history_file: Option<PathBuf>,
    /// The predictor.
    pub predictor: PredictorKind,
}
