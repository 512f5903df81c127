//! Test doubles for crates that drive an [`Actuator`]: [`FakeActuator`], an in-memory cluster.
//!
//! Compiled for this crate's tests and, for other crates, behind the `test-util` feature.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use prescale_core::{Decision, ReplicaState, WorkloadRef};

use crate::{ActuationOutcome, Actuator, ActuatorError};

#[derive(Debug, Default)]
struct FakeCluster {
    workloads: HashMap<WorkloadRef, ReplicaState>,
    applied: Vec<(WorkloadRef, Decision)>,
    failures: VecDeque<ActuatorError>,
}

/// A fake direct-scale actuator over an in-memory set of workloads. `apply` sets `spec` and
/// `ready` to the target at once (use [`FakeActuator::set_state`] to model slow pods); queued
/// failures are returned first, one per call, without touching the state.
#[derive(Debug, Default)]
pub struct FakeActuator {
    cluster: Mutex<FakeCluster>,
}

impl FakeActuator {
    /// A fake with no workload.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same fake with `workload` in `state`.
    pub fn with_workload(self, workload: WorkloadRef, state: ReplicaState) -> Self {
        self.set_state(workload, state);
        self
    }

    /// Puts `workload` in `state` (adds it if absent).
    pub fn set_state(&self, workload: WorkloadRef, state: ReplicaState) {
        self.lock().workloads.insert(workload, state);
    }

    /// The state of `workload`, if present.
    pub fn state(&self, workload: &WorkloadRef) -> Option<ReplicaState> {
        self.lock().workloads.get(workload).copied()
    }

    /// Makes the next call to `current` or `apply` fail with `error` (queued in order).
    pub fn fail_next(&self, error: ActuatorError) {
        self.lock().failures.push_back(error);
    }

    /// The decisions applied successfully, oldest first.
    pub fn applied(&self) -> Vec<(WorkloadRef, Decision)> {
        self.lock().applied.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeCluster> {
        self.cluster.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Actuator for FakeActuator {
    fn mode(&self) -> &'static str {
        "fake"
    }

    async fn current(&self, workload: &WorkloadRef) -> Result<ReplicaState, ActuatorError> {
        let mut cluster = self.lock();
        if let Some(error) = cluster.failures.pop_front() {
            return Err(error);
        }
        cluster.workloads.get(workload).copied().ok_or_else(|| ActuatorError::WorkloadNotFound(workload.clone()))
    }

    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        let mut cluster = self.lock();
        if let Some(error) = cluster.failures.pop_front() {
            return Err(error);
        }
        let state =
            cluster.workloads.get_mut(workload).ok_or_else(|| ActuatorError::WorkloadNotFound(workload.clone()))?;
        let from = state.spec;
        let outcome = if from == decision.target {
            ActuationOutcome::AlreadyAtTarget
        } else {
            state.spec = decision.target;
            state.ready = decision.target;
            ActuationOutcome::Scaled { from, to: decision.target }
        };
        cluster.applied.push((workload.clone(), decision.clone()));
        Ok(outcome)
    }
}
