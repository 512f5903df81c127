//! Durable storage of the events accepted through the API.
//!
//! An event is acknowledged (201) only after [`EventStore::save`] returned, and the daemon
//! reloads every stored event at start. [`FileEventStore`] writes one JSON file per workload
//! atomically (temporary file in the same directory, fsync, rename); a ConfigMap store for
//! in-cluster use implements the same trait.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use prescale_core::{ScheduledEvent, WorkloadRef};
use serde::{Deserialize, Serialize};

use crate::DaemonError;

/// Where accepted events are kept.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Every stored event, per workload.
    async fn load(&self) -> Result<BTreeMap<WorkloadRef, Vec<ScheduledEvent>>, DaemonError>;
    /// Replace the stored events of `workload` with `events`; durable once this returns.
    async fn save(&self, workload: &WorkloadRef, events: &[ScheduledEvent]) -> Result<(), DaemonError>;
}

/// One workload's stored events, as written to disk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEvents {
    workload: WorkloadRef,
    events: Vec<ScheduledEvent>,
}

/// Events as JSON files in a directory: `events.<namespace>.<name>.json`.
#[derive(Debug, Clone)]
pub struct FileEventStore {
    dir: PathBuf,
}

impl FileEventStore {
    /// A store in `dir` (created on first save if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file holding `workload`'s events. Namespaces contain no '.', so the name is unambiguous.
    fn file_of(&self, workload: &WorkloadRef) -> PathBuf {
        self.dir.join(format!("events.{}.{}.json", workload.namespace, workload.name))
    }

    fn store_error(path: &Path, message: impl std::fmt::Display) -> DaemonError {
        DaemonError::Store { location: path.display().to_string(), message: message.to_string() }
    }

    fn load_blocking(dir: &Path) -> Result<BTreeMap<WorkloadRef, Vec<ScheduledEvent>>, DaemonError> {
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Self::store_error(dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| Self::store_error(dir, e))?.path();
            let is_events_file = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events.") && n.ends_with(".json"));
            if !is_events_file {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| Self::store_error(&path, e))?;
            let stored: StoredEvents = serde_json::from_str(&text).map_err(|e| Self::store_error(&path, e))?;
            for event in &stored.events {
                if let Err(problems) = event.validate() {
                    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    return Err(Self::store_error(&path, format!("event {:?}: {}", event.id, list.join("; "))));
                }
            }
            out.insert(stored.workload, stored.events);
        }
        Ok(out)
    }

    fn save_blocking(dir: &Path, file: &Path, stored: &StoredEvents) -> Result<(), DaemonError> {
        std::fs::create_dir_all(dir).map_err(|e| Self::store_error(dir, e))?;
        let json = serde_json::to_vec_pretty(stored).map_err(|e| Self::store_error(file, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Self::store_error(dir, e))?;
        tmp.write_all(&json).map_err(|e| Self::store_error(tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| Self::store_error(tmp.path(), e))?;
        tmp.persist(file).map_err(|e| Self::store_error(file, e.error))?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for FileEventStore {
    async fn load(&self) -> Result<BTreeMap<WorkloadRef, Vec<ScheduledEvent>>, DaemonError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || Self::load_blocking(&dir))
            .await
            .map_err(|e| Self::store_error(&self.dir, e))?
    }

    async fn save(&self, workload: &WorkloadRef, events: &[ScheduledEvent]) -> Result<(), DaemonError> {
        let dir = self.dir.clone();
        let file = self.file_of(workload);
        let stored = StoredEvents { workload: workload.clone(), events: events.to_vec() };
        tokio::task::spawn_blocking(move || Self::save_blocking(&dir, &file, &stored))
            .await
            .map_err(|e| Self::store_error(&self.dir, e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> ScheduledEvent {
        ScheduledEvent {
            id: id.into(),
            name: "Spring campaign".into(),
            kind: "marketing-campaign".into(),
            start: "2026-03-01T14:00:00Z".parse().unwrap(),
            end: "2026-03-01T15:00:00Z".parse().unwrap(),
            description: None,
            expected_multiplier: Some(3.0),
        }
    }

    #[tokio::test]
    async fn saved_events_load_back_and_a_save_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileEventStore::new(dir.path().join("state"));
        assert!(store.load().await.unwrap().is_empty(), "a missing directory is an empty store");
        let w = WorkloadRef::new("shop", "frontend");
        store.save(&w, &[event("a"), event("b")]).await.unwrap();
        store.save(&w, &[event("b")]).await.unwrap();
        store.save(&WorkloadRef::new("shop", "api"), &[event("c")]).await.unwrap();
        let loaded = FileEventStore::new(dir.path().join("state")).load().await.unwrap();
        assert_eq!(loaded[&w], vec![event("b")]);
        assert_eq!(loaded[&WorkloadRef::new("shop", "api")][0].id, "c");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state")).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no temporary file is left behind");
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events.shop.frontend.json"), "{not json").unwrap();
        let err = FileEventStore::new(dir.path()).load().await.unwrap_err();
        assert!(err.to_string().contains("events.shop.frontend.json"), "{err}");
    }
}
