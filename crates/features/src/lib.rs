//! prescale-features: feature engineering on a workload's history, with polars inside.
//!
//! Two entry points, both taking plain [`prescale_core`] types and returning plain types
//! (no polars type crosses the crate boundary):
//!
//! - [`build_features`]: per step of the history, calendar encodings (minute of day, day of
//!   week; raw, sin and cos), lags (1 step, 1 day, 1 week), trailing rolling mean, std and max
//!   and a trend per configured window, and event features (active flags, minutes since the
//!   active event started, minutes until the next event of each kind), as a [`FeatureFrame`].
//!   Missing points stay `NaN`, never zero. Column names are in [`columns`].
//! - [`uplift_table`]: for each past event, its traffic against the same clock window on
//!   comparable event-free days, with how early the rise began and how late it settled,
//!   summarized per event kind as a [`prescale_core::UpliftTable`]. The method is in the
//!   documentation of [`measure_event_uplifts`]'s module ([`UpliftConfig`]).

mod error;
mod events;
mod frame;
mod input;
mod pipeline;
mod uplift;

pub use error::FeatureError;
pub use frame::{FeatureFrame, columns};
pub use pipeline::{FeatureConfig, build_features};
pub use uplift::{EventUplift, SkipReason, UpliftConfig, measure_event_uplifts, uplift_table};
