//! An in-memory, thread-safe store of scheduled events per workload.
//!
//! This is what the daemon's events API writes into and what the predictor reads
//! through [`EventSource`]. Every stored event has passed [`ScheduledEvent::validate`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prescale_core::{ScheduledEvent, WorkloadRef};

use crate::source::{overlaps, sort_events};
use crate::{CollectorError, EventSource};

/// Scheduled events per workload, keyed by event id. Share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    events: RwLock<HashMap<WorkloadRef, BTreeMap<String, ScheduledEvent>>>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a new event; fails if it is invalid or its id already exists for the workload.
    pub fn add(&self, workload: &WorkloadRef, event: ScheduledEvent) -> Result<(), CollectorError> {
        validate(&event)?;
        let mut all = self.events.write().unwrap_or_else(PoisonError::into_inner);
        let events = all.entry(workload.clone()).or_default();
        if events.contains_key(&event.id) {
            return Err(CollectorError::DuplicateEvent { workload: workload.to_string(), id: event.id });
        }
        events.insert(event.id.clone(), event);
        Ok(())
    }

    /// Stores an event under its id, replacing any event with the same id; returns the
    /// replaced one. Fails only if the event is invalid.
    pub fn replace(
        &self,
        workload: &WorkloadRef,
        event: ScheduledEvent,
    ) -> Result<Option<ScheduledEvent>, CollectorError> {
        validate(&event)?;
        let mut all = self.events.write().unwrap_or_else(PoisonError::into_inner);
        Ok(all.entry(workload.clone()).or_default().insert(event.id.clone(), event))
    }

    /// Removes the event `id` of the workload; returns it, or `None` if there was none.
    pub fn remove(&self, workload: &WorkloadRef, id: &str) -> Option<ScheduledEvent> {
        let mut all = self.events.write().unwrap_or_else(PoisonError::into_inner);
        let events = all.get_mut(workload)?;
        let removed = events.remove(id);
        if events.is_empty() {
            all.remove(workload);
        }
        removed
    }

    /// Every event of the workload, ordered by start, then id.
    pub fn list(&self, workload: &WorkloadRef) -> Vec<ScheduledEvent> {
        self.matching(workload, |_| true)
    }

    fn matching(&self, workload: &WorkloadRef, keep: impl Fn(&ScheduledEvent) -> bool) -> Vec<ScheduledEvent> {
        let all = self.events.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<ScheduledEvent> =
            all.get(workload).map(|events| events.values().filter(|e| keep(e)).cloned().collect()).unwrap_or_default();
        sort_events(&mut out);
        out
    }
}

fn validate(event: &ScheduledEvent) -> Result<(), CollectorError> {
    event.validate().map_err(|problems| CollectorError::InvalidEvent { id: event.id.clone(), problems })
}

#[async_trait]
impl EventSource for InMemoryEventStore {
    async fn events(
        &self,
        workload: &WorkloadRef,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ScheduledEvent>, CollectorError> {
        Ok(self.matching(workload, |e| overlaps(e, from, to)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn event(id: &str, start: &str, end: &str) -> ScheduledEvent {
        ScheduledEvent {
            id: id.into(),
            name: format!("Event {id}"),
            kind: "marketing-campaign".into(),
            start: t(start),
            end: t(end),
            description: None,
            expected_multiplier: None,
        }
    }

    #[test]
    fn add_list_replace_remove() {
        let store = InMemoryEventStore::new();
        let shop = WorkloadRef::new("shop", "frontend");
        let other = WorkloadRef::new("shop", "checkout");
        store.add(&shop, event("b", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).unwrap();
        store.add(&shop, event("a", "2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z")).unwrap();
        store.add(&other, event("a", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")).unwrap();
        let ids = |v: Vec<ScheduledEvent>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list(&shop)), ["b", "a"]);
        assert_eq!(ids(store.list(&other)), ["a"]);

        let dup = store.add(&shop, event("a", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")).unwrap_err();
        assert!(matches!(dup, CollectorError::DuplicateEvent { ref id, .. } if id == "a"), "{dup}");

        let moved = event("a", "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z");
        let previous = store.replace(&shop, moved.clone()).unwrap().unwrap();
        assert_eq!(previous.start, t("2026-03-03T10:00:00Z"));
        assert_eq!(ids(store.list(&shop)), ["a", "b"]);
        assert!(store.replace(&shop, event("c", "2026-03-04T10:00:00Z", "2026-03-04T11:00:00Z")).unwrap().is_none());

        assert_eq!(store.remove(&shop, "a"), Some(moved));
        assert_eq!(store.remove(&shop, "a"), None);
        assert_eq!(store.remove(&WorkloadRef::new("x", "y"), "a"), None);
        assert_eq!(ids(store.list(&shop)), ["b", "c"]);
        assert_eq!(ids(store.list(&other)), ["a"]);
    }

    #[test]
    fn invalid_events_are_refused_with_their_fields() {
        let store = InMemoryEventStore::new();
        let shop = WorkloadRef::new("shop", "frontend");
        let err = store.add(&shop, event("bad id!", "2026-03-02T10:00:00Z", "2026-03-02T09:00:00Z")).unwrap_err();
        match err {
            CollectorError::InvalidEvent { problems, .. } => {
                let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
                assert_eq!(fields, ["id", "end"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(store.replace(&shop, event("", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).is_err());
        assert!(store.list(&shop).is_empty());
    }

    #[tokio::test]
    async fn event_source_filters_by_workload_and_window() {
        let store = InMemoryEventStore::new();
        let shop = WorkloadRef::new("shop", "frontend");
        store.add(&shop, event("early", "2026-03-01T08:00:00Z", "2026-03-01T09:00:00Z")).unwrap();
        store.add(&shop, event("late", "2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z")).unwrap();
        let source: &dyn EventSource = &store;
        let got = source.events(&shop, t("2026-03-01T08:30:00Z"), t("2026-03-01T12:00:00Z")).await.unwrap();
        assert_eq!(got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["early"]);
        let stranger = WorkloadRef::new("x", "y");
        let none = source.events(&stranger, t("2026-03-01T00:00:00Z"), t("2026-03-02T00:00:00Z")).await.unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn concurrent_writers_all_land() {
        let store = Arc::new(InMemoryEventStore::new());
        let shop = WorkloadRef::new("shop", "frontend");
        let handles: Vec<_> = (0..8)
            .map(|thread| {
                let (store, shop) = (Arc::clone(&store), shop.clone());
                std::thread::spawn(move || {
                    for i in 0..50 {
                        store
                            .add(
                                &shop,
                                event(&format!("e{thread}-{i}"), "2026-03-01T08:00:00Z", "2026-03-01T09:00:00Z"),
                            )
                            .unwrap();
                        let _ = store.list(&shop);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(store.list(&shop).len(), 400);
    }
}
