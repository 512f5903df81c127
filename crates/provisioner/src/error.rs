//! The one error type of the provisioner crate: invalid configuration and failed actuation.

use prescale_core::WorkloadRef;
use thiserror::Error;

/// Errors of the provisioner: a policy or HPA spec that cannot work, or an actuator that could not
/// read or change a workload.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ProvisionerError {
    /// A configuration field holds a value the algorithm cannot work with.
    #[error("invalid {section}.{field}: {reason}")]
    InvalidConfig {
        /// Which configuration the field belongs to (`policy`, `hpa`).
        section: &'static str,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it, with the value seen.
        reason: String,
    },
    /// The workload does not exist (or is not visible to the actuator).
    #[error("workload {0} not found")]
    WorkloadNotFound(WorkloadRef),
    /// The API refused the change for good (forbidden, invalid); retrying the same change will not help.
    #[error("change to {workload} rejected: {message}")]
    Rejected {
        /// The workload the change was for.
        workload: WorkloadRef,
        /// The reason the API gave.
        message: String,
    },
    /// The API could not be reached or answered with a transient failure; the next tick may succeed.
    #[error("API unavailable for {workload}: {message}")]
    Unavailable {
        /// The workload the call was for.
        workload: WorkloadRef,
        /// What failed.
        message: String,
    },
}

/// The error an [`crate::Actuator`] returns: the crate's one error type under the name its callers read.
pub type ActuatorError = ProvisionerError;
