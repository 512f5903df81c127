//! prescale-predictor: forecasters behind one async [`Predictor`] trait.
//!
//! Implementations: seasonal naive ([`SeasonalNaive`]), the seasonal exponential-smoothing
//! baseline ([`Model`], fitted by [`fit`]), the event-aware predictor ([`EventAware`],
//! `statistical+events`), the fallback combinator ([`Fallback`]), the references a model
//! must beat ([`reference`]), and the LLM-adjusted predictor (`llm:<model>`). Fitting
//! ("training") turns a history into a serializable [`Model`] artifact with its own
//! backtest. The shared test suite every implementation passes is `contract` (feature
//! `test-util`).
//!
//! All statistical models work on the history's step (counts per step), treat missing
//! points as missing (never zero), use only the history before the origin, and leave
//! event windows out of the baseline.

mod backtest;
mod calibrate;
mod error;
mod events;
mod fallback;
mod grid;
mod model;
mod naive;
mod request;
mod seasonal;
mod stats;

#[cfg(feature = "test-util")]
pub mod contract;
pub mod llm;
pub mod reference;

pub use backtest::Backtest;
pub use error::PredictError;
pub use events::{EventAware, ramp_weight};
pub use fallback::Fallback;
pub use model::{FitConfig, Model, SCHEMA_VERSION, fit};
pub use naive::{Season, SeasonalNaive};
pub use request::PredictRequest;
pub use seasonal::{BaselineParams, DayGrouping, ProfileParams};

use async_trait::async_trait;
use prescale_core::{Forecast, ForecastSource};

/// A forecaster. Implementations must pass the shared contract suite
/// (`contract::check`): forecast length equals the request's horizon, values
/// finite and non-negative, `p90 >= p50`, an explanation, a source from the
/// closed set.
#[async_trait]
pub trait Predictor: Send + Sync {
    /// The source label this predictor writes on its forecasts.
    fn source(&self) -> ForecastSource;

    /// Forecast `request.horizon_steps` steps from `request.at`, using only
    /// history before `request.at`.
    async fn predict(&self, request: &PredictRequest) -> Result<Forecast, PredictError>;
}
