//! prescale-harness: tools that drive prescale's stages end to end on real data.
//!
//! - [`backtest`]: replay a real trace through each scaling policy (prescale, the Kubernetes
//!   HPA, reference and predictive baselines, perfect foresight) in a fast discrete-time
//!   simulation and score them.
//! - [`load`]: an open-loop HTTP load generator with HDR latency histograms per window and phase.
//! - [`scenario`]: the seed scenario on the embedded cluster, once per policy (prescale, the
//!   reactive HPA, prescale raising the HPA's floor), with its report and verdict.
//!
//! The binary `prescale-harness` exposes each tool as a subcommand; its `main` only parses
//! arguments and calls these functions.

pub mod backtest;
mod error;
pub mod load;
pub mod scenario;

pub use error::HarnessError;
