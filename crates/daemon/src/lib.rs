//! prescale-daemon: the `prescaled` binary's library.
//!
//! - [`config`]: the configuration file, validated field by field (`prescaled check-config`).
//! - [`api`]: the Prediction API (axum) with `/metrics`, `/healthz`, `/readyz`, `/openapi.json`.
//! - [`state`]: what the loop and the API share: per-workload status, events, the decisions log.
//! - [`store`]: durable storage of the events accepted through the API.
//! - [`metrics`]: the Prometheus registry, passed as a value.
//! - [`engine`]: the loop: collect -> predict -> decide -> act, per workload per tick.
//! - [`history`]: the bounded history kept per workload.
//! - [`kube`]: Kubernetes access: the actuator (direct, hpa-floor), Events, the ConfigMap event store.
//! - [`offline`]: `prescaled forecast`, a one-shot forecast from files.
//! - [`accuracy`]: live forecast accuracy (observed vs the forecast made one lead time earlier).

pub mod accuracy;
pub mod api;
pub mod config;
pub mod engine;
mod error;
pub mod history;
pub mod kube;
pub mod metrics;
pub mod offline;
mod recent;
pub mod state;
pub mod store;

pub use error::DaemonError;
