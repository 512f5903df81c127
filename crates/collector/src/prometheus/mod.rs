//! A [`MetricSource`] over the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`).
//!
//! TLS: the HTTP client is built on rustls without a compiled-in crypto provider, so
//! the process must install one before building a [`PrometheusSource`], also for plain
//! http. Binaries do it once at the start of `main`:
//! `rustls::crypto::ring::default_provider().install_default()`. Without it,
//! [`PrometheusSource::new`] returns [`CollectorError::InvalidConfig`] instead of panicking.

mod response;
mod split;

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use prescale_core::{TimeSeries, WorkloadRef};
use url::Url;

use crate::source::Grid;
use crate::{CollectorError, MetricSource, QueryTemplates, Signal};
use response::{Exchange, QueryData};
pub use split::PROMETHEUS_MAX_POINTS;
use split::split_range;

/// Where and how to query Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Base URL of the server, e.g. `http://prometheus:9090` or `https://host/prometheus/`.
    pub base_url: String,
    /// Deadline of each HTTP call; also sent as Prometheus' own `timeout` parameter.
    pub timeout: StdDuration,
    /// PromQL per signal.
    pub templates: QueryTemplates,
    /// Most points per series in one range call (1..=11,000); longer ranges are split.
    pub max_points_per_query: usize,
}

impl PrometheusConfig {
    /// Defaults for the server at `base_url`: 10 s timeout, default templates, 11,000 points per call.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            timeout: StdDuration::from_secs(10),
            templates: QueryTemplates::default(),
            max_points_per_query: PROMETHEUS_MAX_POINTS,
        }
    }
}

/// Reads workload metrics from a Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    client: reqwest::Client,
    instant_url: Url,
    range_url: Url,
    timeout: StdDuration,
    templates: QueryTemplates,
    max_points: usize,
}

impl PrometheusSource {
    /// A source for the configured server. Fails on a bad URL, a zero timeout, an empty
    /// template, an out-of-range point limit, or a process without a rustls crypto provider.
    pub fn new(config: PrometheusConfig) -> Result<Self, CollectorError> {
        config.templates.check()?;
        if config.timeout.is_zero() {
            return Err(CollectorError::InvalidConfig("Prometheus timeout must be positive".into()));
        }
        if !(1..=PROMETHEUS_MAX_POINTS).contains(&config.max_points_per_query) {
            return Err(CollectorError::InvalidConfig(format!(
                "max_points_per_query must be between 1 and {PROMETHEUS_MAX_POINTS}, got {}",
                config.max_points_per_query
            )));
        }
        let mut base = Url::parse(&config.base_url)
            .map_err(|e| CollectorError::InvalidConfig(format!("Prometheus URL {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(CollectorError::InvalidConfig(format!(
                "Prometheus URL {:?} must start with http:// or https://",
                config.base_url
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let join = |path: &str| {
            base.join(path).map_err(|e| CollectorError::InvalidConfig(format!("Prometheus URL {base}: {e}")))
        };
        let (instant_url, range_url) = (join("api/v1/query")?, join("api/v1/query_range")?);
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(CollectorError::InvalidConfig(
                "no rustls crypto provider is installed in this process; call \
                 rustls::crypto::ring::default_provider().install_default() at startup"
                    .into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| CollectorError::InvalidConfig(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Self {
            client,
            instant_url,
            range_url,
            timeout: config.timeout,
            templates: config.templates,
            max_points: config.max_points_per_query,
        })
    }

    /// Evaluates `promql` on an epoch-aligned grid of `step`, from the point containing
    /// `from` to the last point complete by `to` (see [`MetricSource`]).
    ///
    /// Point `i` holds the value evaluated at the END of its interval, so a
    /// `rate(x[step])` describes exactly that interval. Long ranges are split so no call
    /// exceeds the point limit. `NaN`, infinities and absent samples are `None`; a query
    /// that returns no series over the whole range is [`CollectorError::EmptyResult`].
    pub async fn query_range(
        &self,
        promql: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        let grid = Grid::covering(from, to, step, 0)?;
        let mut values = vec![None; grid.len];
        let mut had_series = false;
        let step_param = grid.step_secs.to_string();
        for window in split_range(&grid, self.max_points) {
            let (start, end) = (window.start.timestamp().to_string(), window.end.timestamp().to_string());
            tracing::debug!(query = promql, start, end, points = window.points, "Prometheus range call");
            let params = [("query", promql), ("start", &start), ("end", &end), ("step", &step_param)];
            let ex = self.exchange(promql, self.range_url.as_str());
            let data = self.call(&self.range_url, &ex, &params).await?;
            let slots = &mut values[window.first_index..window.first_index + window.points];
            had_series |= response::fill_matrix(&ex, data, window.start.timestamp(), grid.step_secs, slots)?;
        }
        if !had_series {
            return Err(CollectorError::EmptyResult { query: promql.to_string() });
        }
        TimeSeries::new(grid.start, grid.step(), values).map_err(|e| CollectorError::InvalidRange(e.to_string()))
    }

    /// Evaluates `promql` at `at`. `None` for `NaN` or infinity; no series is
    /// [`CollectorError::EmptyResult`], several are [`CollectorError::MultipleSeries`].
    pub async fn query_instant(&self, promql: &str, at: DateTime<Utc>) -> Result<Option<f64>, CollectorError> {
        let time = format!("{:.3}", at.timestamp_millis() as f64 / 1000.0);
        let params = [("query", promql), ("time", time.as_str())];
        let ex = self.exchange(promql, self.instant_url.as_str());
        let data = self.call(&self.instant_url, &ex, &params).await?;
        response::instant_value(&ex, data)
    }

    fn exchange<'a>(&self, query: &'a str, url: &'a str) -> Exchange<'a> {
        Exchange { query, url, timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX) }
    }

    /// One GET call to `endpoint` with `params`; the data of a successful answer.
    async fn call(
        &self,
        endpoint: &Url,
        ex: &Exchange<'_>,
        params: &[(&str, &str)],
    ) -> Result<QueryData, CollectorError> {
        let mut url = endpoint.clone();
        let timeout_param = format!("{}ms", self.timeout.as_millis());
        url.query_pairs_mut().extend_pairs(params).append_pair("timeout", &timeout_param);
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                CollectorError::Timeout { query: ex.query.to_string(), timeout_ms: ex.timeout_ms }
            } else {
                CollectorError::Transport { url: endpoint.to_string(), message: error_chain(&e) }
            }
        };
        let response = self.client.get(url).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(transport)?;
        response::parse_answer(ex, status, &body)
    }
}

#[async_trait]
impl MetricSource for PrometheusSource {
    async fn range(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
    ) -> Result<TimeSeries, CollectorError> {
        let promql = self.templates.render(signal, workload)?;
        self.query_range(&promql, from, to, step).await
    }

    async fn instant(
        &self,
        workload: &WorkloadRef,
        signal: Signal,
        at: DateTime<Utc>,
    ) -> Result<Option<f64>, CollectorError> {
        let promql = self.templates.render(signal, workload)?;
        self.query_instant(&promql, at).await
    }
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
