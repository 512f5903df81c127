//! The open-loop generator: requests leave at their scheduled times whatever the responses do.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::LoadError;
use super::record::{Outcome, Recorder};
use super::schedule::RateSchedule;

/// The generator's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    /// The URL every request GETs (`http://` only).
    pub url: String,
    /// A request without a complete response after this long (wall time) is a timeout error.
    pub timeout: Duration,
    /// Scenario seconds per wall second (1 = real time). Request rates are not scaled.
    pub time_scale: f64,
    /// Width of the statistics windows, scenario seconds (default 10).
    pub window_s: f64,
}

impl LoadConfig {
    /// Settings for `url` with a 2 s timeout, real time and 10-second windows.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), timeout: Duration::from_secs(2), time_scale: 1.0, window_s: 10.0 }
    }
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// An open-loop load generator following a [`RateSchedule`].
///
/// The `k`-th request is due when the scheduled rate, integrated from the start, reaches
/// `k`; it is sent then (or at once when the dispatcher is late) in its own task, so a
/// slow response never delays the next request. Latency runs from the due time.
#[derive(Debug)]
pub struct LoadGenerator {
    config: LoadConfig,
    uri: Uri,
    schedule: RateSchedule,
    recorder: Arc<Recorder>,
    client: HttpClient,
}

impl LoadGenerator {
    /// A generator for `schedule` with `config`; checks the URL and settings.
    pub fn new(config: LoadConfig, schedule: RateSchedule) -> Result<Self, LoadError> {
        let uri: Uri = config.url.parse().map_err(|e| LoadError::Config(format!("url {:?}: {e}", config.url)))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(LoadError::Config(format!("url {:?}: expected http://host[:port]/path", config.url)));
        }
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(LoadError::Config(format!("time scale must be positive, got {}", config.time_scale)));
        }
        if config.timeout.is_zero() {
            return Err(LoadError::Config("timeout must be longer than zero".into()));
        }
        let recorder = Arc::new(Recorder::new(config.window_s)?);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4096)
            .build(connector);
        Ok(Self { config, uri, schedule, recorder, client })
    }

    /// The recorder, to read progress while the generator runs.
    pub fn recorder(&self) -> Arc<Recorder> {
        self.recorder.clone()
    }

    /// The schedule.
    pub fn schedule(&self) -> &RateSchedule {
        &self.schedule
    }

    /// Run the schedule from `start` (scenario second 0 is `start`) to its end, or until
    /// `stop` turns true; then wait for the requests in flight (each ends within the timeout).
    pub async fn run(&self, start: Instant, mut stop: watch::Receiver<bool>) -> Result<(), LoadError> {
        let stopped = async move {
            // A dropped sender means nobody will stop the run: it goes to the schedule's end.
            if stop.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(stopped);
        let mut halted = false;
        let scale = self.config.time_scale;
        let end_s = self.schedule.end_s();
        let mut tasks = JoinSet::new();
        let mut due = start;
        // With no traffic scheduled, look again after this much wall time.
        let idle_step = Duration::from_millis(5);
        loop {
            let t_s = due.saturating_duration_since(start).as_secs_f64() * scale;
            if t_s >= end_s || halted {
                break;
            }
            let rate = self.schedule.rate_at(t_s);
            if rate <= 0.0 {
                due += idle_step;
                continue;
            }
            if due > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = &mut stopped => {
                        halted = true;
                        continue;
                    }
                }
            }
            let phase = self.schedule.phase_at(t_s).unwrap_or("none").to_string();
            let lag = Instant::now().saturating_duration_since(due);
            self.recorder.sent(t_s, &phase, lag)?;
            let request = send(self.client.clone(), self.uri.clone(), self.config.timeout);
            let recorder = self.recorder.clone();
            let intended = due;
            tasks.spawn(async move {
                let outcome = request.await;
                recorder.completed(t_s, &phase, outcome, intended.elapsed());
            });
            while tasks.try_join_next().is_some() {}
            due += Duration::from_secs_f64(1.0 / rate);
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                return Err(LoadError::Task(e.to_string()));
            }
        }
        Ok(())
    }
}

/// GET `uri`, reading the whole body, within `timeout`.
async fn send(client: HttpClient, uri: Uri, timeout: Duration) -> Outcome {
    let exchange = async move {
        let response = client.get(uri).await.map_err(|_| Outcome::Connection)?;
        let status = response.status();
        response.into_body().collect().await.map_err(|_| Outcome::Connection)?;
        Ok::<_, Outcome>(if status.is_success() { Outcome::Success } else { Outcome::Status(status.as_u16()) })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(outcome)) | Ok(Err(outcome)) => outcome,
        Err(_) => Outcome::Timeout,
    }
}
