//! The daemon under test: its configuration file, `prescale_daemon::run` in process on the
//! scenario's clock, and the Prediction API calls the harness makes (announce the event, read
//! the forecast, read the LLM counters from `/metrics`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prescale_core::{ScheduledEvent, SharedClock};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::report::LlmUsage;
use super::run::LlmOptions;
use super::{ScenarioError, write_file};

/// Namespace of the scenario's workload.
pub(crate) const NAMESPACE: &str = "default";
/// Name of the scenario's Deployment (and of its Service and HPA).
pub(crate) const WORKLOAD: &str = "shop-frontend";

/// Where the daemon reads metrics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricsPlan {
    /// Each pod's `/metrics`, found through the Kubernetes API.
    PodScrape,
    /// A Prometheus server's HTTP API.
    Prometheus(String),
}

/// What goes into the daemon's configuration.
#[derive(Debug, Clone)]
pub(crate) struct DaemonPlan {
    /// Directory for the config, token and event store.
    pub dir: PathBuf,
    /// `direct` or `hpa-floor`.
    pub mode: &'static str,
    /// The cluster's kubeconfig.
    pub kubeconfig: PathBuf,
    /// The metrics source.
    pub metrics: MetricsPlan,
    /// Requests per second one pod serves at 100%, in the daemon's units.
    pub capacity_per_pod: f64,
    /// Pod startup the daemon plans with, scenario seconds.
    pub startup_s: u64,
    /// Lead the daemon adds to the startup, scenario seconds.
    pub safety_buffer_s: u64,
    /// Tick interval, scenario seconds.
    pub tick_s: u64,
    /// Scale-down stabilization window, scenario seconds.
    pub stabilization_s: u64,
    /// Time between two scale-downs, scenario seconds.
    pub scale_down_cooldown_s: u64,
    /// Fewest and most replicas.
    pub replicas: (u32, u32),
    /// The seed history (CSV).
    pub history_file: PathBuf,
    /// The calendar of past events.
    pub calendar_file: PathBuf,
    /// The LLM predictor's endpoint, when used.
    pub llm: Option<LlmOptions>,
}

impl DaemonPlan {
    /// The configuration as YAML.
    pub fn yaml(&self, listen: &str, token_file: &Path) -> Result<String, ScenarioError> {
        let metrics = match &self.metrics {
            // The embedded cluster's pods each listen on their own loopback port, named by an annotation.
            MetricsPlan::PodScrape => json!({
                "source": "pod-scrape",
                "scrape_port_annotation": prescale_cluster::METRICS_PORT_ANNOTATION,
                "step": "1m",
            }),
            MetricsPlan::Prometheus(url) => json!({"source": "prometheus", "prometheus_url": url, "step": "1m"}),
        };
        let mut workload = json!({
            "namespace": NAMESPACE,
            "name": WORKLOAD,
            "mode": self.mode,
            "min_replicas": self.replicas.0,
            "max_replicas": self.replicas.1,
            "capacity_per_pod": self.capacity_per_pod,
            "target_utilization": 0.7,
            "startup": format!("{}s", self.startup_s),
            "safety_buffer": format!("{}s", self.safety_buffer_s),
            "stabilization_window": format!("{}s", self.stabilization_s),
            "scale_down_cooldown": format!("{}s", self.scale_down_cooldown_s),
            "horizon": "60m",
            "events": [self.calendar_file.display().to_string()],
            "history_file": self.history_file.display().to_string(),
            "predictor": if self.llm.is_some() { "llm" } else { "statistical+events" },
        });
        let mut config = json!({
            "tick_interval": format!("{}s", self.tick_s),
            "api": {"listen": listen, "token_file": token_file.display().to_string()},
            "kubernetes": {"connection": "kubeconfig", "kubeconfig": self.kubeconfig.display().to_string()},
            "metrics": metrics,
            "state": {"store": "file", "dir": self.dir.join("state").display().to_string()},
            "workloads": [],
        });
        if let Some(llm) = &self.llm {
            let mut section = json!({"endpoint": llm.endpoint, "model": llm.model});
            if let Some(var) = &llm.api_key_env {
                section["api_key_env"] = json!(var);
            }
            config["llm"] = section;
        }
        if let Some(w) = workload.as_object_mut() {
            w.retain(|_, v| !v.is_null());
        }
        config["workloads"] = json!([workload]);
        serde_yaml_ng::to_string(&config).map_err(|e| ScenarioError::Daemon(format!("cannot write its config: {e}")))
    }
}

/// A token nobody guesses: `RandomState` is seeded from the operating system's randomness.
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..4u64)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// The forecast as `GET .../forecast` shows it (the fields the harness reads).
#[derive(Debug, Deserialize)]
pub(crate) struct ForecastView {
    /// Step length, seconds.
    pub step_secs: u32,
    /// The steps.
    pub steps: Vec<ForecastStep>,
}

/// One forecast step.
#[derive(Debug, Deserialize)]
pub(crate) struct ForecastStep {
    /// Step start.
    pub t: chrono::DateTime<chrono::Utc>,
    /// Median, requests per step.
    pub p50: f64,
}

/// A daemon running in this process.
pub(crate) struct RunningDaemon {
    base: String,
    token: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), prescale_daemon::DaemonError>>>,
}

impl std::fmt::Debug for RunningDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningDaemon").field("base", &self.base).finish_non_exhaustive()
    }
}

impl RunningDaemon {
    /// Write the configuration, start the daemon on `clock` and wait until its first tick is done.
    pub async fn start(plan: &DaemonPlan, clock: SharedClock, ready_timeout: Duration) -> Result<Self, ScenarioError> {
        let port = super::prometheus::free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let token = token();
        let token_file = plan.dir.join("api-token");
        write_file(&token_file, &token)?;
        let config_path = plan.dir.join("daemon.yaml");
        write_file(&config_path, &plan.yaml(&listen, &token_file)?)?;
        let config = prescale_daemon::config::load(&config_path)
            .map_err(|e| ScenarioError::Daemon(format!("{}: {e}", config_path.display())))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(prescale_daemon::run(config, clock, async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ScenarioError::Daemon(format!("HTTP client: {e}")))?;
        let mut daemon = Self { base: format!("http://{listen}"), token, http, stop: Some(stop), task: Some(task) };
        daemon.wait_ready(ready_timeout).await?;
        Ok(daemon)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), ScenarioError> {
        let started = Instant::now();
        loop {
            if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
                let outcome = match self.task.take() {
                    Some(task) => task.await,
                    None => return Err(ScenarioError::Daemon("stopped at start".into())),
                };
                return Err(ScenarioError::Daemon(match outcome {
                    Ok(Ok(())) => "stopped at start without an error".to_string(),
                    Ok(Err(e)) => format!("stopped at start: {e}"),
                    Err(e) => format!("panicked at start: {e}"),
                }));
            }
            let ready = self.http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(ScenarioError::Timeout(format!(
                    "the daemon at {} was not ready (first fit and tick) within {timeout:?}",
                    self.base
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn workload_url(&self, rest: &str) -> String {
        format!("{}/v1/workloads/{NAMESPACE}/{WORKLOAD}/{rest}", self.base)
    }

    /// Announce `event` through the Prediction API.
    pub async fn announce(&self, event: &ScheduledEvent) -> Result<(), ScenarioError> {
        let response = self
            .http
            .post(self.workload_url("events"))
            .bearer_auth(&self.token)
            .json(event)
            .send()
            .await
            .map_err(|e| ScenarioError::Daemon(format!("announcing {}: {e}", event.id)))?;
        let status = response.status();
        if status.as_u16() == 201 {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(ScenarioError::Daemon(format!("announcing {}: {status}: {body}", event.id)))
    }

    /// The current forecast, `None` while there is none.
    pub async fn forecast(&self) -> Option<ForecastView> {
        let response = self.http.get(self.workload_url("forecast")).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// The workload's last error, if the daemon reports one.
    pub async fn last_error(&self) -> Option<String> {
        let response = self.http.get(format!("{}/v1/workloads", self.base)).send().await.ok()?;
        let body: serde_json::Value = response.json().await.ok()?;
        body.pointer("/workloads/0/last_error").and_then(|v| v.as_str()).map(str::to_string)
    }

    /// The LLM counters from `/metrics`.
    pub async fn llm_usage(&self) -> Option<LlmUsage> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.ok()?.text().await.ok()?;
        Some(parse_llm_usage(&text))
    }

    /// Stop the daemon (it finishes its tick) and wait for it.
    pub async fn stop(mut self) -> Result<(), ScenarioError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ScenarioError::Daemon(format!("stopped with an error: {e}"))),
            Ok(Err(e)) => Err(ScenarioError::Daemon(format!("panicked: {e}"))),
            Err(_) => Err(ScenarioError::Timeout("the daemon did not stop within 30 s".into())),
        }
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Sum the samples of a metric family whose line starts with `name` (`name{...} value` or
/// `name value`).
fn sum_metric(text: &str, name: &str, label: Option<&str>) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter(|l| label.is_none_or(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The LLM counters of the daemon's exposition text (tokens: the `kind="prompt"` series).
pub(crate) fn parse_llm_usage(text: &str) -> LlmUsage {
    LlmUsage {
        calls: sum_metric(text, "prescale_llm_calls_total", None),
        fallbacks: sum_metric(text, "prescale_llm_fallbacks_total", None),
        prompt_tokens: sum_metric(text, "prescale_llm_tokens_total", Some("kind=\"prompt\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_counters_are_summed_over_labels() {
        let text = "# HELP prescale_llm_calls LLM predictor steps\n\
                    prescale_llm_calls_total{namespace=\"default\",workload=\"shop-frontend\",kind=\"ok\"} 7\n\
                    prescale_llm_calls_total{namespace=\"default\",workload=\"shop-frontend\",kind=\"fallback\"} 2\n\
                    prescale_llm_fallbacks_total{namespace=\"default\",workload=\"shop-frontend\"} 2\n\
                    prescale_llm_tokens_total{namespace=\"default\",workload=\"shop-frontend\",kind=\"prompt\"} 8100\n\
                    prescale_llm_tokens_total{namespace=\"default\",workload=\"shop-frontend\",kind=\"completion\"} 900\n";
        assert_eq!(parse_llm_usage(text), LlmUsage { calls: 9, fallbacks: 2, prompt_tokens: 8100 });
        assert_eq!(parse_llm_usage(""), LlmUsage::default());
    }

    #[test]
    fn the_config_is_one_the_daemon_accepts() {
        let dir = std::env::temp_dir().join(format!("prescale-scenario-config-{}", std::process::id()));
        let plan = DaemonPlan {
            dir: dir.clone(),
            mode: "direct",
            kubeconfig: dir.join("kubeconfig"),
            metrics: MetricsPlan::PodScrape,
            capacity_per_pod: 60.0,
            startup_s: 50,
            safety_buffer_s: 70,
            tick_s: 30,
            stabilization_s: 300,
            scale_down_cooldown_s: 120,
            replicas: (2, 40),
            history_file: dir.join("history.csv"),
            calendar_file: dir.join("past-events.yaml"),
            llm: None,
        };
        let yaml = plan.yaml("127.0.0.1:9999", &dir.join("token")).unwrap();
        let tree: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let config = prescale_daemon::config::validate(&tree).unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        assert_eq!(config.tick_interval, Duration::from_secs(30));
        assert_eq!(config.workloads[0].mode, prescale_daemon::config::Mode::Direct);
        let llm = LlmOptions { endpoint: "http://127.0.0.1:1/v1".into(), model: "m".into(), api_key_env: None };
        let yaml =
            DaemonPlan { llm: Some(llm), mode: "hpa-floor", ..plan }.yaml("127.0.0.1:9999", &dir.join("t")).unwrap();
        let tree: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let config = prescale_daemon::config::validate(&tree).unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        assert_eq!(config.workloads[0].predictor, prescale_daemon::config::PredictorKind::Llm);
        assert_eq!(config.workloads[0].mode, prescale_daemon::config::Mode::HpaFloor);
    }
}
