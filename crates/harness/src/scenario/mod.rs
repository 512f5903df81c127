//! The seed scenario (`prescale-harness scenario`): the product's acceptance test.
//!
//! The eight steps of GUIDE section 4, run once per policy on a fresh embedded cluster
//! (`prescale-cluster`), in scenario time compressed by a `ScaledClock` shared by the cluster
//! and the daemon (request rates are not compressed):
//!
//! 1. Setup: a `shop-frontend` Deployment sized for the baseline; for `hpa` and
//!    `prescale-floor` a CPU-70% HPA; for `prescale` and `prescale-floor` the daemon
//!    (`prescale_daemon::run`, in process, real kube client against the cluster, seeded with
//!    14 days of synthetic history and a calendar of two past `marketing-campaign` events).
//! 2. Baseline load (open loop), sampled replicas, CPU and memory.
//! 3. The harness announces `spring-campaign` through the Prediction API.
//! 4. Replicas rise before the load does (or, for `hpa`, after it).
//! 5. The surge at `--surge-multiplier` times the baseline; 6. latency, errors, CPU and
//!    memory measured through it; 7. back to the baseline.
//! 8. Scale-down, measured to its end.
//!
//! Module map: [`timeline`] (when things happen, the load schedule), [`history`] (synthetic
//! history and calendar), `daemon` (its configuration and API), `prometheus` (the real
//! Prometheus of `--prometheus`), `run` (one policy's run), [`measure`] (samples to numbers),
//! [`report`] (JSON, markdown, table, verdict), `chart` (SVG), `progress` (terminal).

mod chart;
mod cli;
mod daemon;
pub mod history;
pub mod measure;
mod progress;
mod prometheus;
pub mod report;
mod run;
pub mod timeline;

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

pub use cli::{ScenarioArgs, run_cli};
pub use report::{Check, RunNotes, RunReport, ScenarioReport, Verdict};
pub use run::{LlmOptions, Policy, ScenarioOptions, ScenarioOutcome, run};
pub use timeline::{Timeline, TimelineKind};

/// Why the scenario could not run (a failed check is not an error: it is in the verdict).
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// An option cannot work; names it and says why.
    #[error("invalid {option}: {problem}")]
    InvalidOption {
        /// The option as written on the command line.
        option: &'static str,
        /// What is wrong with the value.
        problem: String,
    },
    /// The load generator could not run.
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    /// The embedded cluster failed.
    #[error("embedded cluster: {0}")]
    Cluster(#[from] prescale_cluster::ClusterError),
    /// The daemon would not start, answer or stop.
    #[error("daemon: {0}")]
    Daemon(String),
    /// Prometheus would not start or answer.
    #[error("prometheus: {0}")]
    Prometheus(String),
    /// No loopback port could be had.
    #[error("loopback network: {0}")]
    Network(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The chart could not be drawn.
    #[error("{0}")]
    Chart(String),
}

/// Write `text` to `path`, creating its directory.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<(), ScenarioError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ScenarioError::Write { path: dir.to_path_buf(), source })?;
    }
    std::fs::write(path, text).map_err(|source| ScenarioError::Write { path: path.to_path_buf(), source })
}

/// Wall time for `scenario` scenario seconds at `time_scale`.
pub(crate) fn wall(scenario_s: f64, time_scale: f64) -> Duration {
    Duration::from_secs_f64((scenario_s / time_scale).max(0.0))
}
