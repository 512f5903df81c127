//! prescale-collector: where prescale reads metrics and scheduled events from.
//!
//! - [`MetricSource`]: a workload's [`Signal`]s as [`TimeSeries`](prescale_core::TimeSeries)
//!   on a fixed step, missing points `None`. Implemented by [`PrometheusSource`] (HTTP API,
//!   PromQL per signal from [`QueryTemplates`]) and [`CsvHistory`] (history files).
//! - Kubernetes sources for clusters without Prometheus: [`PodScrapeSource`] lists the
//!   workload's Ready pods ([`KubePods`]) and scrapes each pod's `/metrics` (request rate,
//!   error rate, p95 latency); [`MetricsApiSource`] reads pod CPU and memory from
//!   `metrics.k8s.io`. Both turn reads of "now" into series on the range grid.
//! - [`EventSource`]: a workload's [`ScheduledEvent`](prescale_core::ScheduledEvent)s.
//!   Implemented by [`EventCalendar`] (CSV or YAML files) and [`InMemoryEventStore`]
//!   (what the events API writes into).
//!
//! Every failure is a [`CollectorError`]; no HTTP-client or kube type crosses this crate's boundary.
//!
//! TLS: [`PrometheusSource`] uses rustls without a built-in crypto provider. A binary
//! must install one before building a source, even for plain http:
//! `let _ = rustls::crypto::ring::default_provider().install_default();`

mod error;
mod event_store;
mod exposition;
mod file;
mod kube_pods;
mod metrics_api;
mod pod_scrape;
mod prometheus;
mod samples;
mod signal;
mod source;

pub use error::CollectorError;
pub use event_store::InMemoryEventStore;
pub use file::{Aggregate, CsvHistory, EventCalendar};
pub use kube_pods::{KubeConnection, KubePods, PodEndpoint};
pub use metrics_api::{MetricsApiSource, PodResources};
pub use pod_scrape::{PodScrapeConfig, PodScrapeSource};
pub use prometheus::{PROMETHEUS_MAX_POINTS, PrometheusConfig, PrometheusSource};
pub use signal::{QueryTemplates, Signal};
pub use source::{EventSource, MetricSource};
