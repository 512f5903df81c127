//! A real Prometheus for `--prometheus`: Debian's `prometheus` binary on a free loopback port,
//! with a generated configuration that scrapes the pods through `file_sd` targets the harness
//! rewrites from the cluster's pod list (each target labelled `namespace` and `pod`, as the
//! collector's default queries expect).
//!
//! Prometheus stamps samples with wall-clock time, so this mode runs at time scale 1.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{ScenarioError, write_file};

/// Seconds between two scrapes.
pub(crate) const SCRAPE_INTERVAL_S: u64 = 5;

/// Where the `prometheus` binary is: `explicit`, else `prometheus` on `PATH`, else
/// `/usr/bin/prometheus`; `None` when none exists.
pub(crate) fn find_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file());
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/prometheus")).filter(|p| p.is_file()))
}

/// A free port on 127.0.0.1 (bound and released; the caller binds it again at once).
pub(crate) fn free_port() -> Result<u16, ScenarioError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ScenarioError::Network(format!("no free port on 127.0.0.1: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| ScenarioError::Network(e.to_string()))
}

/// A running Prometheus, stopped on drop.
#[derive(Debug)]
pub(crate) struct PrometheusServer {
    child: tokio::process::Child,
    url: String,
    targets: PathBuf,
    last_targets: String,
}

impl PrometheusServer {
    /// Start `binary` with its files under `dir` and wait until it is ready.
    pub async fn start(binary: &Path, dir: &Path) -> Result<Self, ScenarioError> {
        let port = free_port()?;
        let targets = dir.join("targets.json");
        write_file(&targets, "[]\n")?;
        let config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  evaluation_interval: {SCRAPE_INTERVAL_S}s\n\
             scrape_configs:\n  - job_name: shop-frontend\n    scrape_interval: {SCRAPE_INTERVAL_S}s\n    \
             file_sd_configs:\n      - files: [{}]\n        refresh_interval: 2s\n",
            json!(targets.display().to_string())
        );
        let config_path = dir.join("prometheus.yml");
        write_file(&config_path, &config)?;
        let log_path = dir.join("prometheus.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|source| ScenarioError::Write { path: log_path.clone(), source })?;
        let log_err = log.try_clone().map_err(|source| ScenarioError::Write { path: log_path.clone(), source })?;
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ScenarioError::Prometheus(format!("cannot start {}: {e}", binary.display())))?;
        let mut server = Self { child, url: format!("http://127.0.0.1:{port}"), targets, last_targets: String::new() };
        server.wait_ready(&log_path).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, log: &Path) -> Result<(), ScenarioError> {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(ScenarioError::Prometheus(format!("exited with {status} at start: {}", text.trim())));
            }
            let ready = http.get(format!("{}/-/ready", self.url)).timeout(Duration::from_secs(2)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(ScenarioError::Timeout(format!("prometheus at {} not ready after 60 s", self.url)));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Scrape exactly these pods (`(namespace, pod name, port on 127.0.0.1)`), rewriting the
    /// targets file atomically when the set changed.
    pub fn set_targets(&mut self, pods: &[(String, String, u16)]) -> Result<(), ScenarioError> {
        let groups: Vec<_> = pods
            .iter()
            .map(|(namespace, pod, port)| {
                json!({"targets": [format!("127.0.0.1:{port}")], "labels": {"namespace": namespace, "pod": pod}})
            })
            .collect();
        let text = serde_json::Value::Array(groups).to_string();
        if text == self.last_targets {
            return Ok(());
        }
        let tmp = self.targets.with_extension("json.tmp");
        write_file(&tmp, &text)?;
        std::fs::rename(&tmp, &self.targets)
            .map_err(|source| ScenarioError::Write { path: self.targets.clone(), source })?;
        self.last_targets = text;
        Ok(())
    }

    /// Stop it and wait for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
