//! State shared by the loop and the Prediction API: per-workload status, events, the decisions log.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prescale_core::{Decision, Forecast, ReplicaState, ScheduledEvent, SharedClock, WorkloadRef};
use serde::Serialize;

use crate::DaemonError;
use crate::config::{Mode, WorkloadConfig};
use crate::metrics::Metrics;
use crate::store::EventStore;

/// What the loop last saw and decided for a workload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkloadStatus {
    /// The replica state read at the last tick.
    pub replicas: Option<ReplicaState>,
    /// The last forecast.
    pub forecast: Option<Forecast>,
    /// The last decision (its target is the planned replica count).
    pub decision: Option<Decision>,
    /// CPU and memory of the pods at the last tick, when a source reports them.
    pub resources: Option<PodResourceUse>,
    /// What failed at the last tick, if anything.
    pub last_error: Option<String>,
    /// When the status was last updated.
    pub updated_at: Option<DateTime<Utc>>,
}

/// CPU and memory use summed over a workload's pods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PodResourceUse {
    /// CPU in use, cores.
    pub cpu_cores: f64,
    /// Memory working set, bytes.
    pub memory_bytes: f64,
}

/// A decision in the decisions log.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// The workload.
    pub workload: WorkloadRef,
    /// Its mode at the time.
    pub mode: Mode,
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// Whether the target was written to the cluster (never in forecast-only mode).
    pub applied: bool,
    /// Whether this replica held the leader Lease (only the leader acts).
    pub leader: bool,
    /// The forecast source label, when a forecast was made.
    pub source: Option<String>,
}

/// A forecast and the replica count planned from it, without acting.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The forecast.
    pub forecast: Forecast,
    /// The decision the policy would take now.
    pub decision: Decision,
}

/// Computes what-if plans for the API (implemented by the loop's engine).
#[async_trait]
pub trait Planner: Send + Sync {
    /// The plan for `workload` if `extra_events` were scheduled too; changes no state.
    async fn plan(&self, workload: &WorkloadRef, extra_events: Vec<ScheduledEvent>) -> Result<Plan, DaemonError>;
}

/// One workload's shared entry.
#[derive(Debug)]
pub struct WorkloadEntry {
    /// Its configuration.
    pub config: WorkloadConfig,
    status: RwLock<WorkloadStatus>,
    file_events: RwLock<Vec<ScheduledEvent>>,
    /// Events accepted through the API. The async lock is held across the durable save, so
    /// concurrent requests for one workload are applied in order.
    api_events: tokio::sync::Mutex<Vec<ScheduledEvent>>,
    /// Bumped by every change through this replica's API, so a reload that read the store
    /// before the change does not undo it.
    api_generation: AtomicU64,
}

impl WorkloadEntry {
    /// The last status.
    pub fn status(&self) -> WorkloadStatus {
        self.status.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replace the status.
    pub fn set_status(&self, status: WorkloadStatus) {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// Events from the configured calendar files.
    pub fn file_events(&self) -> Vec<ScheduledEvent> {
        self.file_events.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replace the calendar files' events (at start and at refit).
    pub fn set_file_events(&self, events: Vec<ScheduledEvent>) {
        *self.file_events.write().unwrap_or_else(|p| p.into_inner()) = events;
    }

    /// Events accepted through the API.
    pub async fn api_events(&self) -> Vec<ScheduledEvent> {
        self.api_events.lock().await.clone()
    }

    /// Every known event: calendar files first, then the API's, sorted by start then id.
    pub async fn all_events(&self) -> Vec<ScheduledEvent> {
        let mut all = self.file_events();
        all.extend(self.api_events().await);
        all.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.id.cmp(&b.id)));
        all
    }
}

/// Why an event could not be added or removed.
#[derive(Debug)]
pub enum EventChangeError {
    /// An event with this id exists already (`from_file` when it comes from a calendar file).
    Duplicate {
        /// Whether the existing event is from a calendar file.
        from_file: bool,
    },
    /// No API event with this id (`in_file` when a calendar file defines it).
    NotFound {
        /// Whether a calendar file defines the id.
        in_file: bool,
    },
    /// The durable store failed; nothing changed.
    Store(DaemonError),
}

/// Everything the loop and the API share.
pub struct DaemonState {
    clock: SharedClock,
    metrics: Metrics,
    store: Arc<dyn EventStore>,
    workloads: BTreeMap<WorkloadRef, Arc<WorkloadEntry>>,
    decisions: Mutex<VecDeque<DecisionRecord>>,
    decisions_capacity: usize,
    ready: AtomicBool,
}

impl std::fmt::Debug for DaemonState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonState").field("workloads", &self.workloads.keys().collect::<Vec<_>>()).finish()
    }
}

impl DaemonState {
    /// State for `workloads`, with the events already stored in `store` loaded back.
    pub async fn load(
        clock: SharedClock,
        metrics: Metrics,
        store: Arc<dyn EventStore>,
        workloads: Vec<WorkloadConfig>,
        decisions_capacity: usize,
    ) -> Result<Self, DaemonError> {
        let mut stored = store.load().await?;
        let mut map = BTreeMap::new();
        for config in workloads {
            let events = stored.remove(&config.workload).unwrap_or_default();
            let entry = WorkloadEntry {
                config,
                status: RwLock::new(WorkloadStatus::default()),
                file_events: RwLock::new(Vec::new()),
                api_events: tokio::sync::Mutex::new(events),
                api_generation: AtomicU64::new(0),
            };
            map.insert(entry.config.workload.clone(), Arc::new(entry));
        }
        for orphan in stored.keys() {
            tracing::warn!(workload = %orphan, "stored events belong to a workload that is no longer configured; kept on disk, ignored");
        }
        Ok(Self {
            clock,
            metrics,
            store,
            workloads: map,
            decisions: Mutex::new(VecDeque::new()),
            decisions_capacity: decisions_capacity.max(1),
            ready: AtomicBool::new(false),
        })
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Every workload, ordered by namespace and name.
    pub fn workloads(&self) -> impl Iterator<Item = &Arc<WorkloadEntry>> {
        self.workloads.values()
    }

    /// One workload's entry.
    pub fn workload(&self, workload: &WorkloadRef) -> Option<&Arc<WorkloadEntry>> {
        self.workloads.get(workload)
    }

    /// Add an API event durably: saved to the store before it is visible.
    pub async fn add_event(&self, entry: &WorkloadEntry, event: ScheduledEvent) -> Result<(), EventChangeError> {
        let mut api = entry.api_events.lock().await;
        if entry.file_events().iter().any(|e| e.id == event.id) {
            return Err(EventChangeError::Duplicate { from_file: true });
        }
        if api.iter().any(|e| e.id == event.id) {
            return Err(EventChangeError::Duplicate { from_file: false });
        }
        let mut next = api.clone();
        next.push(event);
        self.store.save(&entry.config.workload, &next).await.map_err(EventChangeError::Store)?;
        *api = next;
        entry.api_generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Remove an API event durably; returns the removed event.
    pub async fn remove_event(&self, entry: &WorkloadEntry, id: &str) -> Result<ScheduledEvent, EventChangeError> {
        let mut api = entry.api_events.lock().await;
        let Some(pos) = api.iter().position(|e| e.id == id) else {
            let in_file = entry.file_events().iter().any(|e| e.id == id);
            return Err(EventChangeError::NotFound { in_file });
        };
        let mut next = api.clone();
        let removed = next.remove(pos);
        self.store.save(&entry.config.workload, &next).await.map_err(EventChangeError::Store)?;
        *api = next;
        entry.api_generation.fetch_add(1, Ordering::SeqCst);
        Ok(removed)
    }

    /// Reload the API events from the store, so events accepted by another replica (sharing a
    /// ConfigMap store) count here too. A failed read keeps the events known so far.
    pub async fn reload_events(&self) {
        let generations: BTreeMap<&WorkloadRef, u64> =
            self.workloads.iter().map(|(w, e)| (w, e.api_generation.load(Ordering::SeqCst))).collect();
        let mut stored = match self.store.load().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload the stored events; keeping the ones known");
                return;
            }
        };
        for entry in self.workloads.values() {
            let events = stored.remove(&entry.config.workload).unwrap_or_default();
            let mut api = entry.api_events.lock().await;
            if generations.get(&entry.config.workload) != Some(&entry.api_generation.load(Ordering::SeqCst)) {
                // Changed here while the store was read: what is in memory is newer.
                continue;
            }
            if *api != events {
                tracing::info!(workload = %entry.config.workload, events = events.len(), "stored events changed");
                *api = events;
            }
        }
    }

    /// Append to the decisions log, dropping the oldest beyond its capacity.
    pub fn log_decision(&self, record: DecisionRecord) {
        let mut log = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        log.push_back(record);
        while log.len() > self.decisions_capacity {
            log.pop_front();
        }
    }

    /// The decisions log, oldest first.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        self.decisions.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// Mark the daemon ready (after the first fit and tick).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Whether the daemon is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
