//! Field-by-field validation of a configuration tree, collecting every problem with its key path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use prescale_core::{FieldError, WorkloadRef};
use serde_json::{Map, Value};

use super::types::*;

const TOP_KEYS: &[&str] = &[
    "tick_interval",
    "refit_interval",
    "concurrency",
    "history_retention",
    "decisions_log",
    "api",
    "kubernetes",
    "metrics",
    "llm",
    "state",
    "leader_election",
    "workloads",
];
const API_KEYS: &[&str] = &["listen", "token_file", "token_env", "max_body_bytes"];
const KUBE_KEYS: &[&str] = &["connection", "kubeconfig", "context"];
const METRICS_KEYS: &[&str] = &[
    "source",
    "prometheus_url",
    "scrape_port",
    "scrape_port_annotation",
    "scrape_path",
    "step",
    "stale_after",
    "timeout",
    "pod_resources",
];
const LEADER_KEYS: &[&str] = &["enabled", "namespace", "name", "identity", "lease_duration", "renew_interval"];
const LLM_KEYS: &[&str] =
    &["endpoint", "model", "api_key_env", "api_key_file", "connect_timeout", "request_timeout", "max_deadline"];
const STATE_KEYS: &[&str] = &["store", "dir", "namespace", "name"];
const WORKLOAD_KEYS: &[&str] = &[
    "namespace",
    "name",
    "mode",
    "min_replicas",
    "max_replicas",
    "capacity_per_pod",
    "target_utilization",
    "startup",
    "safety_buffer",
    "stabilization_window",
    "max_scale_down_fraction",
    "tolerance",
    "scale_down_cooldown",
    "horizon",
    "signals",
    "events",
    "history_file",
    "predictor",
];
/// Signal names a workload may give a query for.
pub(crate) const SIGNAL_NAMES: &[&str] = &["request_rate", "cpu", "memory", "latency_p95", "error_rate"];

/// Collected problems.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), problem: problem.into() });
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Describe a value's type for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// A table: reports unknown keys, then gives typed access to its fields.
struct Table<'v> {
    path: String,
    map: &'v Map<String, Value>,
}

impl<'v> Table<'v> {
    /// The table at `path`, with its unknown keys reported; `None` (reported) when not a table.
    fn open(p: &mut Problems, path: &str, value: &'v Value, allowed: &[&str]) -> Option<Self> {
        let Value::Object(map) = value else {
            p.push(path, format!("expected a table, got {}", kind_of(value)));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                p.push(join(path, key), "unknown key");
            }
        }
        Some(Self { path: path.to_string(), map })
    }

    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value at `key`, treating null as absent.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, p: &mut Problems, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.trim().is_empty() => {
                p.push(self.field(key), "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            // Environment overrides arrive parsed; a number or boolean is still a valid string.
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                p.push(self.field(key), format!("expected a string, got {}", kind_of(other)));
                None
            }
        }
    }

    fn boolean(&self, p: &mut Problems, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            // Environment overrides may arrive as text.
            Value::String(s) if s.trim() == "true" => Some(true),
            Value::String(s) if s.trim() == "false" => Some(false),
            other => {
                p.push(self.field(key), format!("expected true or false, got {}", describe(other)));
                None
            }
        }
    }

    fn required_string(&self, p: &mut Problems, key: &str) -> Option<String> {
        if self.get(key).is_none() {
            p.push(self.field(key), "required");
            return None;
        }
        self.string(p, key)
    }

    fn number(&self, p: &mut Problems, key: &str) -> Option<f64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                p.push(self.field(key), format!("expected a number, got {}", describe(v)));
                None
            }
        }
    }

    /// A number in `[lo, hi]` (bounds inclusive unless `lo_open`).
    fn number_in(&self, p: &mut Problems, key: &str, lo: f64, lo_open: bool, hi: f64) -> Option<f64> {
        let n = self.number(p, key)?;
        let ok = if lo_open { n > lo } else { n >= lo } && n <= hi;
        if !ok {
            let open = if lo_open { "(" } else { "[" };
            p.push(self.field(key), format!("must be in {open}{lo}, {hi}], got {n}"));
            return None;
        }
        Some(n)
    }

    fn integer(&self, p: &mut Problems, key: &str, lo: u64, hi: u64) -> Option<u64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(n) => {
                p.push(self.field(key), format!("must be an integer in [{lo}, {hi}], got {n}"));
                None
            }
            None => {
                p.push(self.field(key), format!("expected a whole number, got {}", describe(v)));
                None
            }
        }
    }

    /// A positive duration: a string such as `30s` or `5m`, or a whole number of seconds.
    fn duration(&self, p: &mut Problems, key: &str) -> Option<Duration> {
        let v = self.get(key)?;
        let d = match v {
            Value::String(s) => match super::parse_duration(s) {
                Ok(d) => d,
                Err(e) => {
                    p.push(self.field(key), e);
                    return None;
                }
            },
            Value::Number(n) => match n.as_u64() {
                Some(secs) => Duration::from_secs(secs),
                None => {
                    p.push(self.field(key), format!("expected a duration such as 30s or 5m, got {n}"));
                    return None;
                }
            },
            other => {
                p.push(self.field(key), format!("expected a duration such as 30s or 5m, got {}", kind_of(other)));
                return None;
            }
        };
        if d.is_zero() {
            p.push(self.field(key), "must be longer than zero");
            return None;
        }
        Some(d)
    }

    /// One of `names`; an unknown value names the accepted ones.
    fn choice(&self, p: &mut Problems, key: &str, names: &[&'static str]) -> Option<&'static str> {
        let s = self.string(p, key)?;
        match names.iter().find(|n| **n == s) {
            Some(n) => Some(n),
            None => {
                p.push(self.field(key), format!("unknown value {s:?}, expected one of {}", names.join(", ")));
                None
            }
        }
    }

    fn string_list(&self, p: &mut Problems, key: &str) -> Vec<String> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
                    other => {
                        p.push(
                            format!("{}[{i}]", self.field(key)),
                            format!("expected a path, got {}", describe(other)),
                        );
                        None
                    }
                })
                .collect(),
            // A single string is accepted as a list of one.
            Some(Value::String(s)) => vec![s.clone()],
            Some(other) => {
                p.push(self.field(key), format!("expected a list of paths, got {}", kind_of(other)));
                Vec::new()
            }
        }
    }

    /// At most one of two keys naming a secret's source.
    fn secret(&self, p: &mut Problems, file_key: &str, env_key: &str) -> Option<SecretSource> {
        let file = self.string(p, file_key);
        let env = self.string(p, env_key);
        match (file, env) {
            (Some(_), Some(_)) => {
                p.push(self.field(env_key), format!("give either {file_key} or {env_key}, not both"));
                None
            }
            (Some(f), None) => Some(SecretSource::File(PathBuf::from(f))),
            (None, Some(e)) => {
                if !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    p.push(self.field(env_key), format!("{e:?} is not an environment variable name"));
                }
                Some(SecretSource::Env(e))
            }
            (None, None) => None,
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => kind_of(other).to_string(),
    }
}

/// A Kubernetes namespace: a DNS-1123 label.
fn check_label(p: &mut Problems, field: String, s: &str) {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        p.push(
            field,
            format!("{s:?} is not a valid Kubernetes namespace (lowercase letters, digits, '-', at most 63)"),
        );
    }
}

/// A Kubernetes object name: a DNS-1123 subdomain.
fn check_subdomain(p: &mut Problems, field: String, s: &str) {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        p.push(field, format!("{s:?} is not a valid Kubernetes name (lowercase letters, digits, '-', '.')"));
    }
}

fn check_url(p: &mut Problems, field: String, s: &str) {
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.len() <= "https://".len() {
        p.push(field, format!("{s:?} is not an http(s) URL"));
    }
}

/// Validate the whole tree.
pub(super) fn validate(tree: &Value) -> Result<DaemonConfig, Vec<FieldError>> {
    let mut p = Problems::default();
    let empty = Value::Object(Map::new());
    let Some(top) = Table::open(&mut p, "", tree, TOP_KEYS) else {
        return Err(p.0);
    };
    let tick_interval = top.duration(&mut p, "tick_interval").unwrap_or(Duration::from_secs(30));
    let refit_interval = top.duration(&mut p, "refit_interval").unwrap_or(Duration::from_secs(6 * 3600));
    let concurrency = top.integer(&mut p, "concurrency", 1, 256).unwrap_or(4) as usize;
    let history_retention = top.duration(&mut p, "history_retention").unwrap_or(Duration::from_secs(14 * 86400));
    let decisions_log = top.integer(&mut p, "decisions_log", 1, 100_000).unwrap_or(500) as usize;

    let api = api(&mut p, top.get("api").unwrap_or(&empty));
    let kubernetes = kubernetes(&mut p, top.get("kubernetes").unwrap_or(&empty));
    let metrics = metrics(&mut p, top.get("metrics").unwrap_or(&empty));
    let llm = top.get("llm").and_then(|v| llm(&mut p, v));
    let state = state(&mut p, top.get("state").unwrap_or(&empty));
    let leader_election = leader_election(&mut p, top.get("leader_election").unwrap_or(&empty));

    let mut workloads = Vec::new();
    match top.get("workloads") {
        None => p.push("workloads", "required: list at least one workload"),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                p.push("workloads", "list at least one workload");
            }
            let mut seen: HashMap<WorkloadRef, usize> = HashMap::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("workloads[{i}]");
                if let Some(w) = workload(&mut p, &path, item, llm.is_some()) {
                    if let Some(first) = seen.get(&w.workload) {
                        p.push(path, format!("{} is already configured at workloads[{first}]", w.workload));
                    } else {
                        seen.insert(w.workload.clone(), i);
                        workloads.push(w);
                    }
                }
            }
        }
        Some(other) => p.push("workloads", format!("expected a list, got {}", kind_of(other))),
    }

    let (Some(api), Some(metrics), Some(state), Some(kubernetes), Some(leader_election)) =
        (api, metrics, state, kubernetes, leader_election)
    else {
        return Err(p.0);
    };
    if !p.0.is_empty() {
        return Err(p.0);
    }
    Ok(DaemonConfig {
        tick_interval,
        refit_interval,
        concurrency,
        history_retention,
        decisions_log,
        api,
        kubernetes,
        metrics,
        llm,
        state,
        leader_election,
        workloads,
    })
}

fn leader_election(p: &mut Problems, v: &Value) -> Option<LeaderElection> {
    let t = Table::open(p, "leader_election", v, LEADER_KEYS)?;
    let defaults = LeaderElection::default();
    let enabled = t.boolean(p, "enabled").unwrap_or(defaults.enabled);
    let namespace = t.string(p, "namespace");
    if let Some(ns) = &namespace {
        check_label(p, t.field("namespace"), ns);
    }
    let name = t.string(p, "name").unwrap_or(defaults.name);
    check_subdomain(p, t.field("name"), &name);
    let identity = t.string(p, "identity");
    let lease_duration = t.duration(p, "lease_duration").unwrap_or(defaults.lease_duration);
    let renew_interval = t.duration(p, "renew_interval").unwrap_or(defaults.renew_interval);
    if renew_interval * 2 > lease_duration {
        p.push(
            t.field("renew_interval"),
            format!(
                "must be at most half of lease_duration ({}), got {}",
                humantime::format_duration(lease_duration),
                humantime::format_duration(renew_interval)
            ),
        );
    }
    if lease_duration.subsec_nanos() != 0 {
        p.push(t.field("lease_duration"), "must be a whole number of seconds (a Lease counts in seconds)");
    }
    Some(LeaderElection { enabled, namespace, name, identity, lease_duration, renew_interval })
}

fn api(p: &mut Problems, v: &Value) -> Option<ApiConfig> {
    let t = Table::open(p, "api", v, API_KEYS)?;
    let listen = match t.string(p, "listen") {
        None => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
        Some(s) => match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.push(t.field("listen"), format!("{s:?} is not an address such as 0.0.0.0:8080"));
                None
            }
        },
    };
    let token = t.secret(p, "token_file", "token_env");
    if token.is_none() && t.get("token_file").is_none() && t.get("token_env").is_none() {
        p.push("api.token_file", "required: set api.token_file or api.token_env (mutating requests need a token)");
    }
    let max_body_bytes = t.integer(p, "max_body_bytes", 1024, 16 * 1024 * 1024).unwrap_or(64 * 1024) as usize;
    Some(ApiConfig { listen: listen?, token: token?, max_body_bytes })
}

fn kubernetes(p: &mut Problems, v: &Value) -> Option<KubernetesConnection> {
    let t = Table::open(p, "kubernetes", v, KUBE_KEYS)?;
    let path = t.string(p, "kubeconfig").map(PathBuf::from);
    let context = t.string(p, "context");
    let connection = t.choice(p, "connection", &["auto", "in-cluster", "kubeconfig"]).unwrap_or("auto");
    match connection {
        "in-cluster" => {
            if path.is_some() || context.is_some() {
                p.push(t.field("connection"), "in-cluster takes neither kubeconfig nor context");
            }
            Some(KubernetesConnection::InCluster)
        }
        "kubeconfig" => Some(KubernetesConnection::Kubeconfig { path, context }),
        _ if path.is_some() || context.is_some() => Some(KubernetesConnection::Kubeconfig { path, context }),
        _ => Some(KubernetesConnection::Auto),
    }
}

fn metrics(p: &mut Problems, v: &Value) -> Option<MetricsConfig> {
    let t = Table::open(p, "metrics", v, METRICS_KEYS)?;
    let step = t.duration(p, "step").unwrap_or(Duration::from_secs(60));
    if step.as_secs() == 0 || step.subsec_nanos() != 0 {
        p.push(t.field("step"), "must be a whole number of seconds");
    }
    let stale_after = t.duration(p, "stale_after").unwrap_or(Duration::from_secs(180));
    let timeout = t.duration(p, "timeout").unwrap_or(Duration::from_secs(10));
    let source = match t.choice(p, "source", &["prometheus", "pod-scrape", "none"]) {
        Some("prometheus") => {
            let url = t.required_string(p, "prometheus_url");
            if let Some(u) = &url {
                check_url(p, t.field("prometheus_url"), u);
            }
            url.map(|url| MetricsSource::Prometheus { url })
        }
        Some("pod-scrape") => {
            let path = t.string(p, "scrape_path").unwrap_or_else(|| "/metrics".into());
            if !path.starts_with('/') {
                p.push(t.field("scrape_path"), format!("{path:?} must start with '/'"));
            }
            Some(MetricsSource::PodScrape {
                port: t.integer(p, "scrape_port", 1, 65535).unwrap_or(8080) as u16,
                port_annotation: t.string(p, "scrape_port_annotation").unwrap_or_else(|| "prometheus.io/port".into()),
                path,
            })
        }
        Some(_) => Some(MetricsSource::None),
        None if t.get("source").is_some() => None,
        None => {
            p.push(t.field("source"), "required: one of prometheus, pod-scrape, none");
            None
        }
    };
    let is = |kind: &str| match &source {
        Some(MetricsSource::Prometheus { .. }) => kind == "prometheus",
        Some(MetricsSource::PodScrape { .. }) => kind == "pod-scrape",
        Some(MetricsSource::None) => kind == "none",
        // The source itself is reported; judge the other keys by what was asked for.
        None => t.get("source").and_then(Value::as_str) == Some(kind),
    };
    if !is("prometheus") && t.get("prometheus_url").is_some() {
        p.push(t.field("prometheus_url"), "only used with source: prometheus");
    }
    if !is("pod-scrape") {
        for key in ["scrape_port", "scrape_port_annotation", "scrape_path"] {
            if t.get(key).is_some() {
                p.push(t.field(key), "only used with source: pod-scrape");
            }
        }
    }
    let pod_resources = t.boolean(p, "pod_resources").unwrap_or(true);
    Some(MetricsConfig { source: source?, step, stale_after, timeout, pod_resources })
}

fn llm(p: &mut Problems, v: &Value) -> Option<LlmSettings> {
    let t = Table::open(p, "llm", v, LLM_KEYS)?;
    let endpoint = t.required_string(p, "endpoint");
    if let Some(e) = &endpoint {
        check_url(p, t.field("endpoint"), e);
    }
    let model = t.required_string(p, "model");
    let api_key = t.secret(p, "api_key_file", "api_key_env");
    let connect_timeout = t.duration(p, "connect_timeout").unwrap_or(Duration::from_secs(5));
    let request_timeout = t.duration(p, "request_timeout").unwrap_or(Duration::from_secs(20));
    let max_deadline = t.duration(p, "max_deadline").unwrap_or(Duration::from_secs(20));
    Some(LlmSettings { endpoint: endpoint?, model: model?, api_key, connect_timeout, request_timeout, max_deadline })
}

fn state(p: &mut Problems, v: &Value) -> Option<StateStore> {
    let t = Table::open(p, "state", v, STATE_KEYS)?;
    match t.choice(p, "store", &["file", "configmap"]).unwrap_or("file") {
        "configmap" => {
            let namespace = t.required_string(p, "namespace");
            let name = t.required_string(p, "name");
            if let Some(ns) = &namespace {
                check_label(p, t.field("namespace"), ns);
            }
            if let Some(n) = &name {
                check_subdomain(p, t.field("name"), n);
            }
            Some(StateStore::Configmap { namespace: namespace?, name: name? })
        }
        _ => Some(StateStore::File {
            dir: t.string(p, "dir").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/prescale")),
        }),
    }
}

fn workload(p: &mut Problems, path: &str, v: &Value, llm_configured: bool) -> Option<WorkloadConfig> {
    let t = Table::open(p, path, v, WORKLOAD_KEYS)?;
    let namespace = t.required_string(p, "namespace");
    let name = t.required_string(p, "name");
    if let Some(ns) = &namespace {
        check_label(p, t.field("namespace"), ns);
    }
    if let Some(n) = &name {
        check_subdomain(p, t.field("name"), n);
    }
    let mode = match t.choice(p, "mode", &Mode::NAMES) {
        Some("hpa-floor") => Some(Mode::HpaFloor),
        Some("direct") => Some(Mode::Direct),
        Some(_) => Some(Mode::ForecastOnly),
        None if t.get("mode").is_some() => None,
        None => Some(Mode::ForecastOnly),
    };
    let min_replicas = t.integer(p, "min_replicas", 0, 100_000).map(|n| n as u32);
    let max_replicas = t.integer(p, "max_replicas", 1, 100_000).map(|n| n as u32);
    if t.get("max_replicas").is_none() {
        p.push(t.field("max_replicas"), "required");
    }
    let min_replicas = min_replicas.unwrap_or(1);
    if let Some(max) = max_replicas
        && min_replicas > max
    {
        p.push(t.field("min_replicas"), format!("{min_replicas} is above max_replicas ({max})"));
    }
    let capacity_per_pod = match t.get("capacity_per_pod") {
        Some(Value::String(s)) if s == "auto" => Some(Setting::Auto),
        Some(_) => t.number_in(p, "capacity_per_pod", 0.0, true, 1e9).map(Setting::Fixed),
        None => {
            p.push(t.field("capacity_per_pod"), "required: requests per second per pod at 100 %, or auto");
            None
        }
    };
    let target_utilization = t.number_in(p, "target_utilization", 0.0, true, 1.0).unwrap_or(0.7);
    let startup = match t.get("startup") {
        Some(Value::String(s)) if s == "auto" => Some(Setting::Auto),
        Some(_) => t.duration(p, "startup").map(Setting::Fixed),
        None => Some(Setting::Auto),
    };
    let safety_buffer = t.duration(p, "safety_buffer").unwrap_or(Duration::from_secs(30));
    let stabilization_window = t.duration(p, "stabilization_window").unwrap_or(Duration::from_secs(300));
    let max_scale_down_fraction = t.number_in(p, "max_scale_down_fraction", 0.0, true, 1.0).unwrap_or(0.25);
    let tolerance = t.number_in(p, "tolerance", 0.0, false, 0.99).unwrap_or(0.1);
    let scale_down_cooldown = t.duration(p, "scale_down_cooldown").unwrap_or(Duration::from_secs(120));
    let horizon = t.duration(p, "horizon").unwrap_or(Duration::from_secs(3600));
    let mut signals = BTreeMap::new();
    if let Some(v) = t.get("signals")
        && let Some(st) = Table::open(p, &t.field("signals"), v, SIGNAL_NAMES)
    {
        for name in SIGNAL_NAMES {
            if let Some(q) = st.string(p, name) {
                signals.insert((*name).to_string(), q);
            }
        }
    }
    let events = t.string_list(p, "events").into_iter().map(PathBuf::from).collect();
    let history_file = t.string(p, "history_file").map(PathBuf::from);
    let predictor = match t.choice(p, "predictor", &PredictorKind::NAMES) {
        Some("statistical") => Some(PredictorKind::Statistical),
        Some("llm") => {
            if !llm_configured {
                p.push(t.field("predictor"), "llm needs the top-level llm section (endpoint, model)");
            }
            Some(PredictorKind::Llm)
        }
        Some(_) => Some(PredictorKind::StatisticalEvents),
        None if t.get("predictor").is_some() => None,
        None => Some(PredictorKind::StatisticalEvents),
    };
    Some(WorkloadConfig {
        workload: WorkloadRef::new(namespace?, name?),
        mode: mode?,
        min_replicas,
        max_replicas: max_replicas?,
        capacity_per_pod: capacity_per_pod?,
        target_utilization,
        startup: startup?,
        safety_buffer,
        stabilization_window,
        max_scale_down_fraction,
        tolerance,
        scale_down_cooldown,
        horizon,
        signals,
        events,
        history_file,
        predictor: predictor?,
    })
}
