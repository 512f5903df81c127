//! Helpers shared by the daemon's integration tests: an embedded cluster on a 60x clock, a
//! daemon running in process against it, waiting, and steady HTTP load.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prescale_cluster::{Cluster, ClusterConfig, PodConfig};
use prescale_core::{Clock, ScaledClock, SharedClock, SystemClock};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Cluster-clock (and daemon-clock) seconds per real second.
pub const TIME_SCALE: f64 = 60.0;
/// The API token the test daemons accept.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// One 60x clock for the cluster and the daemons under test.
pub fn clock() -> SharedClock {
    Arc::new(ScaledClock::new(SystemClock.now(), TIME_SCALE))
}

/// A cluster on `clock` with 45 s (clock) startups and 2-worker pods at 20 ms per request.
pub async fn start_cluster(clock: SharedClock) -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ClusterConfig::new(clock);
    config.pod = PodConfig { service_time: Duration::from_millis(20), ..PodConfig::default() };
    Cluster::start(config).await.expect("cluster starts")
}

/// A kube client for the cluster.
pub fn kube_client(cluster: &Cluster) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(cluster.api_url().parse().expect("api url"));
    kube::Client::try_from(config).expect("kube client")
}

/// A plain HTTP client.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("reqwest client")
}

/// Poll `check` every 50 ms until it returns true; panic with `what` after `timeout`.
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Steady GET load on `url` at `rps` until dropped.
pub struct Load {
    running: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Load {
    /// Start sending `rps` requests per real second to `url`, each on schedule (open loop).
    pub fn start(url: String, rps: f64) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let client = http();
        let task = tokio::spawn(async move {
            let interval = Duration::from_secs_f64(1.0 / rps);
            let start = tokio::time::Instant::now();
            let mut i = 0u64;
            while flag.load(Ordering::SeqCst) {
                tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    if let Ok(r) = client.get(&url).send().await {
                        let _ = r.bytes().await;
                    }
                });
                i += 1;
            }
        });
        Self { running, task }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        self.task.abort();
    }
}

/// A daemon running in this process through `prescale_daemon::run`.
pub struct Daemon {
    /// `http://127.0.0.1:<port>` of its API.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), prescale_daemon::DaemonError>>>,
}

impl Daemon {
    /// Write `yaml` (with `{listen}` replaced by a free address) into `dir`, load it like the
    /// binary does and start the daemon on `clock`; waits until `/readyz` answers 200.
    pub async fn start(dir: &Path, name: &str, yaml: &str, clock: SharedClock) -> Daemon {
        let listen = format!("127.0.0.1:{}", free_port());
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml.replace("{listen}", &listen)).unwrap();
        let config = prescale_daemon::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(prescale_daemon::run(config, clock, async move {
            let _ = stopped.await;
        }));
        let daemon = Daemon { base: format!("http://{listen}"), stop: Some(stop), task: Some(task) };
        let client = http();
        let url = format!("{}/readyz", daemon.base);
        wait_until("the daemon's first tick", Duration::from_secs(60), || {
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        daemon
    }

    /// GET a JSON document from the API.
    pub async fn get(&self, path: &str) -> Value {
        http().get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// POST JSON with the token; returns the status and body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = http().post(format!("{}{path}", self.base)).bearer_auth(TOKEN).json(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The decisions log, newest first.
    pub async fn decisions(&self) -> Vec<Value> {
        self.get("/v1/decisions").await["decisions"].as_array().cloned().unwrap_or_default()
    }

    /// Stop it (SIGTERM-like) and wait until `run` returned.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(60), task).await.expect("the daemon stops");
            result.expect("no panic").expect("run returns Ok");
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A directory with the token file and the cluster's kubeconfig.
pub fn workdir(cluster: &Cluster) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    (dir, token, kubeconfig)
}

/// A `timestamp,requests` CSV of `days` days of 1-minute history ending at `end` (exclusive),
/// `per_minute` requests every minute.
pub fn flat_history(path: &Path, end: chrono::DateTime<chrono::Utc>, days: i64, per_minute: f64) {
    let end = prescale_daemon::history::align_down(end, 60);
    let start = end - chrono::Duration::days(days);
    let mut csv = String::from("timestamp,requests\n");
    let mut t = start;
    while t < end {
        csv.push_str(&format!("{},{per_minute}\n", t.format("%Y-%m-%dT%H:%M:%SZ")));
        t += chrono::Duration::minutes(1);
    }
    std::fs::write(path, csv).unwrap();
}
