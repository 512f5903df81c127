//! The [`Actuator`] trait, through which decisions reach a cluster, and [`ForecastOnly`].
//!
//! Implementations decide HOW a target is applied: forecast-only (nothing changes), hpa-floor
//! (raise the user's HPA `minReplicas`), or direct (`spec.replicas`). The kube-backed one is
//! [`crate::kube::KubeActuator`]; this module defines the contract and the forecast-only wrapper.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prescale_core::{Decision, ReplicaState, WorkloadRef};
use serde::{Deserialize, Serialize};

use crate::ActuatorError;

/// What applying a decision did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ActuationOutcome {
    /// Nothing was changed on purpose (forecast-only mode); the decision was recorded.
    Recorded,
    /// The workload already had the target; nothing was written.
    AlreadyAtTarget,
    /// `spec.replicas` went from `from` to `to`.
    Scaled {
        /// Replicas before.
        from: u32,
        /// Replicas after.
        to: u32,
    },
    /// The HPA's `spec.minReplicas` went from `from` to `to`.
    FloorSet {
        /// Floor before.
        from: u32,
        /// Floor after.
        to: u32,
    },
}

/// Reads a workload's replicas and applies decisions to it.
#[async_trait]
pub trait Actuator: Send + Sync {
    /// Short label of how decisions are applied, for logs and metrics (`forecast-only`, `hpa-floor`, ...).
    fn mode(&self) -> &'static str;

    /// The workload's replicas as the cluster shows them now.
    async fn current(&self, workload: &WorkloadRef) -> Result<ReplicaState, ActuatorError>;

    /// Applies `decision.target` to the workload.
    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError>;

    /// Applies `decision.target`, holding a raised HPA floor at most until `hold_until` unless
    /// renewed (the end of the events behind it plus the stabilization window). Actuators
    /// that raise no floor apply as [`Actuator::apply`] does.
    async fn apply_until(
        &self,
        workload: &WorkloadRef,
        decision: &Decision,
        hold_until: DateTime<Utc>,
    ) -> Result<ActuationOutcome, ActuatorError> {
        let _ = hold_until;
        self.apply(workload, decision).await
    }

    /// Restores the user's own HPA floor of `workload` when a floor this actuator raised has
    /// expired by `now` (or the actuator no longer raises floors). Returns whether it restored.
    async fn restore_expired(&self, workload: &WorkloadRef, now: DateTime<Utc>) -> Result<bool, ActuatorError> {
        let _ = (workload, now);
        Ok(false)
    }
}

#[async_trait]
impl<T: Actuator + ?Sized> Actuator for Arc<T> {
    fn mode(&self) -> &'static str {
        (**self).mode()
    }

    async fn current(&self, workload: &WorkloadRef) -> Result<ReplicaState, ActuatorError> {
        (**self).current(workload).await
    }

    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        (**self).apply(workload, decision).await
    }

    async fn apply_until(
        &self,
        workload: &WorkloadRef,
        decision: &Decision,
        hold_until: DateTime<Utc>,
    ) -> Result<ActuationOutcome, ActuatorError> {
        (**self).apply_until(workload, decision, hold_until).await
    }

    async fn restore_expired(&self, workload: &WorkloadRef, now: DateTime<Utc>) -> Result<bool, ActuatorError> {
        (**self).restore_expired(workload, now).await
    }
}

#[async_trait]
impl<T: Actuator + ?Sized> Actuator for Box<T> {
    fn mode(&self) -> &'static str {
        (**self).mode()
    }

    async fn current(&self, workload: &WorkloadRef) -> Result<ReplicaState, ActuatorError> {
        (**self).current(workload).await
    }

    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        (**self).apply(workload, decision).await
    }

    async fn apply_until(
        &self,
        workload: &WorkloadRef,
        decision: &Decision,
        hold_until: DateTime<Utc>,
    ) -> Result<ActuationOutcome, ActuatorError> {
        (**self).apply_until(workload, decision, hold_until).await
    }

    async fn restore_expired(&self, workload: &WorkloadRef, now: DateTime<Utc>) -> Result<bool, ActuatorError> {
        (**self).restore_expired(workload, now).await
    }
}

/// How many decisions [`ForecastOnly::new`] keeps.
const DEFAULT_KEEP: usize = 1000;

/// Forecast-only mode: reads through `reader`, records every decision, changes nothing.
///
/// `reader` is only ever asked for [`Actuator::current`]; its `apply` is never called, so a
/// writing actuator can be wrapped safely.
#[derive(Debug)]
pub struct ForecastOnly<R> {
    reader: R,
    keep: usize,
    recorded: Mutex<VecDeque<(WorkloadRef, Decision)>>,
}

impl<R> ForecastOnly<R> {
    /// Wraps `reader`, keeping the last 1000 decisions.
    pub fn new(reader: R) -> Self {
        Self::keeping(reader, DEFAULT_KEEP)
    }

    /// Wraps `reader`, keeping the last `keep` decisions (oldest dropped first).
    pub fn keeping(reader: R, keep: usize) -> Self {
        Self { reader, keep, recorded: Mutex::new(VecDeque::new()) }
    }

    /// The recorded decisions, oldest first.
    pub fn recorded(&self) -> Vec<(WorkloadRef, Decision)> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

#[async_trait]
impl<R: Actuator> Actuator for ForecastOnly<R> {
    fn mode(&self) -> &'static str {
        "forecast-only"
    }

    async fn current(&self, workload: &WorkloadRef) -> Result<ReplicaState, ActuatorError> {
        self.reader.current(workload).await
    }

    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        if self.keep > 0 {
            while recorded.len() >= self.keep {
                recorded.pop_front();
            }
            recorded.push_back((workload.clone(), decision.clone()));
        }
        Ok(ActuationOutcome::Recorded)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::ProvisionerError;
    use crate::testutil::FakeActuator;

    fn t0() -> DateTime<Utc> {
        "2026-03-01T13:45:00Z".parse().unwrap()
    }

    fn web() -> WorkloadRef {
        WorkloadRef::new("shop", "frontend")
    }

    fn state(spec: u32) -> ReplicaState {
        ReplicaState { spec, ready: spec, hpa_floor: None, observed_load: Some(100.0) }
    }

    #[tokio::test]
    async fn forecast_only_records_and_changes_nothing() {
        let fake = Arc::new(FakeActuator::new().with_workload(web(), state(4)));
        let actuator = ForecastOnly::keeping(Arc::clone(&fake), 2);
        assert_eq!(actuator.mode(), "forecast-only");
        assert_eq!(actuator.current(&web()).await.unwrap(), state(4));
        for target in [12, 13, 14] {
            let outcome = actuator.apply(&web(), &Decision::new(t0(), 4, target, "surge")).await.unwrap();
            assert_eq!(outcome, ActuationOutcome::Recorded);
        }
        assert_eq!(fake.state(&web()), Some(state(4)), "the cluster must be untouched");
        assert!(fake.applied().is_empty());
        let targets: Vec<u32> = actuator.recorded().iter().map(|(_, d)| d.target).collect();
        assert_eq!(targets, vec![13, 14], "keeps the newest two");
    }

    #[tokio::test]
    async fn forecast_only_passes_read_errors_through() {
        let actuator = ForecastOnly::new(FakeActuator::new());
        assert_eq!(actuator.current(&web()).await, Err(ProvisionerError::WorkloadNotFound(web())));
    }

    #[tokio::test]
    async fn fake_actuator_scales_and_fails_on_request() {
        let fake = FakeActuator::new().with_workload(web(), state(4));
        let boxed: Box<dyn Actuator> = Box::new(fake);
        let outcome = boxed.apply(&web(), &Decision::new(t0(), 4, 12, "surge")).await.unwrap();
        assert_eq!(outcome, ActuationOutcome::Scaled { from: 4, to: 12 });
        assert_eq!(boxed.current(&web()).await.unwrap().spec, 12);
        let outcome = boxed.apply(&web(), &Decision::new(t0(), 12, 12, "hold")).await.unwrap();
        assert_eq!(outcome, ActuationOutcome::AlreadyAtTarget);
    }

    #[tokio::test]
    async fn fake_actuator_injected_failure_leaves_state_alone() {
        let fake = FakeActuator::new().with_workload(web(), state(4));
        let failure = ProvisionerError::Unavailable { workload: web(), message: "connection refused".into() };
        fake.fail_next(failure.clone());
        assert_eq!(fake.apply(&web(), &Decision::new(t0(), 4, 12, "surge")).await, Err(failure));
        assert_eq!(fake.state(&web()).unwrap().spec, 4);
        assert!(fake.apply(&web(), &Decision::new(t0(), 4, 12, "surge")).await.is_ok());
        assert_eq!(fake.applied().len(), 1);
    }
}
