//! prescale-core: the domain types every prescale stage shares.
//!
//! This crate does no IO and carries no heavy dependency. Every other stage
//! (collector, features, predictor, provisioner) speaks in these types, so a
//! polars, reqwest or kube type never has to cross a crate boundary.
//!
//! - [`TimeSeries`]: a regular series with explicit missing points.
//! - [`ScheduledEvent`]: an announced event; also the JSON body of the events API.
//! - [`UpliftTable`]: what past events of each kind did to traffic.
//! - [`Forecast`] and [`ForecastSource`]: per-step p50/p90 with a closed set of sources.
//! - [`ReplicaState`] and [`Decision`]: what the provisioner reads and decides.
//! - [`accuracy`]: `rel_mae`, defined once for the whole project.
//! - [`Clock`]: the one source of time and waiting (system, scaled, manual).

mod clock;
mod error;
mod event;
mod forecast;
mod replica;
mod series;
mod uplift;

pub mod accuracy;

pub use clock::{Clock, ManualClock, ScaledClock, SharedClock, SystemClock};
pub use error::CoreError;
pub use event::{FieldError, ScheduledEvent};
pub use forecast::{Forecast, ForecastPoint, ForecastSource};
pub use replica::{Decision, ReplicaState, ScaleDirection};
pub use series::{TimeSeries, WorkloadRef};
pub use uplift::{KindUplift, UpliftObservation, UpliftTable};

/// Re-exported so users of the core types need not pin chrono themselves.
pub use chrono;
