//! prescale-daemon: the `prescaled` binary's library.
//!
//! - [`run`]: the daemon until shutdown (API, loop, Lease); [`release`] restores every raised
//!   HPA floor; [`shutdown_signal`] resolves on SIGTERM/SIGINT.
//! - [`config`]: the configuration file, validated field by field (`prescaled check-config`).
//! - [`api`]: the Prediction API (axum) with `/metrics`, `/healthz`, `/readyz`, `/openapi.json`.
//! - [`state`]: what the loop and the API share: per-workload status, events, the decisions log.
//! - [`store`]: durable storage of the events accepted through the API.
//! - [`metrics`]: the Prometheus registry, passed as a value.
//! - [`engine`]: the loop: collect -> predict -> decide -> act, per workload per tick.
//! - [`history`]: the bounded history kept per workload.
//! - [`kube`]: the daemon's own Kubernetes access: connection, ConfigMap event store.
//! - [`leader`]: leader election through a `coordination.k8s.io/v1` Lease.
//! - [`offline`]: `prescaled forecast`, a one-shot forecast from files.
//! - [`accuracy`]: live forecast accuracy (observed vs the forecast made one lead time earlier).
//! - [`logging`]: tracing-subscriber setup (human or JSON, `RUST_LOG`).

pub mod accuracy;
pub mod api;
pub mod config;
mod daemon;
pub mod engine;
mod error;
pub mod history;
pub mod kube;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod offline;
mod recent;
pub mod state;
pub mod store;

pub use daemon::{release, run, seed_history, shutdown_signal};
pub use error::DaemonError;
