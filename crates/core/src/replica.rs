//! Replica state as observed, and the scaling decision taken from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the cluster shows for a workload at decision time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReplicaState {
    /// `spec.replicas` of the Deployment.
    pub spec: u32,
    /// Ready replicas.
    pub ready: u32,
    /// The HPA's `spec.minReplicas`, when an HPA manages the workload.
    pub hpa_floor: Option<u32>,
    /// Observed load now (requests per forecast step), `None` when metrics are missing or stale.
    pub observed_load: Option<f64>,
}

/// Direction of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleDirection {
    /// More replicas than now.
    Up,
    /// Fewer replicas than now.
    Down,
    /// No change.
    Hold,
}

impl ScaleDirection {
    /// Lower-case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleDirection::Up => "up",
            ScaleDirection::Down => "down",
            ScaleDirection::Hold => "hold",
        }
    }
}

/// A scaling decision with the reason for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// Replicas before the decision (`spec`).
    pub current: u32,
    /// Replicas the policy wants now.
    pub target: u32,
    /// Up, down or hold.
    pub direction: ScaleDirection,
    /// One line saying why, in operator terms.
    pub explanation: String,
}

impl Decision {
    /// A decision from `current` to `target`, with the direction derived.
    pub fn new(at: DateTime<Utc>, current: u32, target: u32, explanation: impl Into<String>) -> Self {
        let direction = match target.cmp(&current) {
            std::cmp::Ordering::Greater => ScaleDirection::Up,
            std::cmp::Ordering::Less => ScaleDirection::Down,
            std::cmp::Ordering::Equal => ScaleDirection::Hold,
        };
        Self { at, current, target, direction, explanation: explanation.into() }
    }
}
