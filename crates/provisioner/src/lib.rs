//! prescale-provisioner: turns a forecast into a replica count and hands it to an actuator.
//!
//! - [`decide`]: the scaling policy as a pure function (no IO, no clock), with the
//!   [`DecisionMemory`] its scale-down stabilization needs; [`Provisioner`] bundles the two.
//! - [`Policy`] / [`PolicyConfig`] / [`PodCapacity`]: bounds, capacity, lead time, scale-down guards;
//!   [`replicas_for`] is the one load-to-pods formula.
//! - [`Actuator`]: reads a workload's replicas and applies a decision; [`ForecastOnly`] records
//!   decisions and changes nothing.
//! - [`kube`]: [`kube::KubeActuator`], the Kubernetes actuator for the direct and hpa-floor
//!   modes through kube-rs, with Kubernetes Events (no kube type leaves the module).
//! - [`hpa`]: the Kubernetes HPA v2 algorithm with its default behavior, the reactive baseline.
//! - [`ProvisionerError`]: the crate's one error type.

mod actuator;
mod decide;
mod error;
pub mod hpa;
pub mod kube;
mod policy;
#[cfg(any(test, feature = "test-util"))]
pub mod testutil;

pub use actuator::{ActuationOutcome, Actuator, ForecastOnly};
pub use decide::{DecisionMemory, Provisioner, decide};
pub use error::{ActuatorError, ProvisionerError};
pub use policy::{PodCapacity, Policy, PolicyConfig, replicas_for};
