//! Kubernetes Events written by the cluster's own controllers, and the bridge that
//! shows `events.k8s.io/v1` Events (what kube-rs' recorder writes) as core Events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::DateTime;
use serde_json::{Value, json};

use crate::resources;
use crate::store::Store;

/// Events older than this (cluster clock) are removed, as the API server's TTL does.
const EVENT_TTL: chrono::Duration = chrono::Duration::hours(1);
/// Check for expired events every this many recorded events.
const PRUNE_EVERY: u64 = 200;

/// Writes core/v1 Events about objects.
#[derive(Debug, Clone)]
pub(crate) struct EventRecorder {
    store: Arc<Store>,
    component: &'static str,
    recorded: Arc<AtomicU64>,
}

impl EventRecorder {
    /// A recorder that signs events as `component`.
    pub fn new(store: Arc<Store>, component: &'static str) -> Self {
        Self { store, component, recorded: Arc::default() }
    }

    /// A `Normal` event about `object`.
    pub fn normal(&self, object: &Value, reason: &str, message: &str) {
        self.record(object, "Normal", reason, message);
    }

    /// A `Warning` event about `object`.
    pub fn warning(&self, object: &Value, reason: &str, message: &str) {
        self.record(object, "Warning", reason, message);
    }

    fn record(&self, object: &Value, event_type: &str, reason: &str, message: &str) {
        let meta = |f: &str| object.pointer(&format!("/metadata/{f}")).cloned().unwrap_or(Value::Null);
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string();
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("unknown");
        let now = self.store.clock().now();
        let stamp = self.store.now_string();
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        let event_name = format!("{name}.{nanos:x}{}", self.store.random_suffix(4));
        let event = json!({
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {
                "kind": object.get("kind").cloned().unwrap_or(Value::Null),
                "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
                "namespace": namespace,
                "name": name,
                "uid": meta("uid"),
                "resourceVersion": meta("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": self.component, "host": crate::kubelet::NODE_NAME},
            "reportingComponent": self.component,
            "reportingInstance": crate::kubelet::NODE_NAME,
        });
        if let Err(e) = self.store.create(resources::events(), &namespace, event) {
            tracing::debug!(error = %e.message, "could not record event");
        }
        if self.recorded.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            prune(&self.store, now - EVENT_TTL);
        }
    }
}

/// Remove core Events last seen before `cutoff`.
fn prune(store: &Store, cutoff: DateTime<chrono::Utc>) {
    for event in store.list_all(resources::events(), None) {
        let last = ["lastTimestamp", "eventTime"]
            .iter()
            .filter_map(|f| event.get(*f).and_then(Value::as_str))
            .chain(event.pointer("/metadata/creationTimestamp").and_then(Value::as_str))
            .find_map(|s| DateTime::parse_from_rfc3339(s).ok());
        if last.is_some_and(|t| t < cutoff) {
            let ns = event.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
            let name = event.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            let _ = store.delete(resources::events(), ns, name, None, None);
        }
    }
}

/// The core/v1 form of an `events.k8s.io/v1` Event.
pub(crate) fn core_from_events_v1(e: &Value) -> Value {
    let event_time = e.get("eventTime").cloned().unwrap_or(Value::Null);
    let series_last = e.pointer("/series/lastObservedTime").cloned();
    let last = e
        .get("deprecatedLastTimestamp")
        .filter(|v| !v.is_null())
        .cloned()
        .or(series_last.clone())
        .unwrap_or_else(|| event_time.clone());
    let count = e.pointer("/series/count").or_else(|| e.get("deprecatedCount")).cloned().unwrap_or(json!(1));
    let mut metadata = json!({
        "name": e.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "namespace": e.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null),
    });
    if let Some(labels) = e.pointer("/metadata/labels") {
        metadata["labels"] = labels.clone();
    }
    json!({
        "metadata": metadata,
        "involvedObject": e.get("regarding").cloned().unwrap_or_else(|| json!({})),
        "related": e.get("related").cloned().unwrap_or(Value::Null),
        "reason": e.get("reason").cloned().unwrap_or(Value::Null),
        "message": e.get("note").cloned().unwrap_or(Value::Null),
        "type": e.get("type").cloned().unwrap_or(Value::Null),
        "action": e.get("action").cloned().unwrap_or(Value::Null),
        "count": count,
        "eventTime": event_time,
        "firstTimestamp": e.get("deprecatedFirstTimestamp").cloned().unwrap_or(Value::Null),
        "lastTimestamp": normalize_time(&last),
        "source": {"component": e.get("reportingController").cloned().unwrap_or(Value::Null)},
        "reportingComponent": e.get("reportingController").cloned().unwrap_or(Value::Null),
        "reportingInstance": e.get("reportingInstance").cloned().unwrap_or(Value::Null),
    })
}

/// `metav1.Time` has whole seconds; MicroTime values are cut to seconds.
fn normalize_time(v: &Value) -> Value {
    match v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) {
        Some(t) => json!(crate::store::format_time(t.with_timezone(&chrono::Utc))),
        None => Value::Null,
    }
}

/// Keep the core/v1 mirror of an `events.k8s.io/v1` Event in step with it.
pub(crate) fn mirror_events_v1(store: &Store, namespace: &str, event: Option<&Value>, name: &str) {
    let core = resources::events();
    match event {
        Some(e) => {
            let mirror = core_from_events_v1(e);
            let result = match store.get(core, namespace, name) {
                Ok(_) => store.mutate(core, namespace, name, |o| {
                    let meta = o["metadata"].clone();
                    *o = mirror;
                    o["metadata"] = meta;
                    Ok(())
                }),
                Err(_) => store.create(core, namespace, mirror),
            };
            if let Err(err) = result {
                tracing::debug!(error = %err.message, "could not mirror events.k8s.io event");
            }
        }
        None => {
            let _ = store.delete(core, namespace, name, None, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prescale_core::{ManualClock, SharedClock};

    #[test]
    fn events_v1_converts_to_a_valid_core_event() {
        let e = json!({"metadata": {"name": "x.1", "namespace": "default"}, "eventTime": "2026-03-01T12:00:00.123456Z",
            "reportingController": "prescale", "reportingInstance": "p-1", "action": "Scale", "reason": "RaisedFloor",
            "regarding": {"kind": "Deployment", "name": "shop", "namespace": "default"}, "note": "floor 4", "type": "Normal"});
        let core = core_from_events_v1(&e);
        assert_eq!(core["message"], "floor 4");
        assert_eq!(core["lastTimestamp"], "2026-03-01T12:00:00Z");
        let typed: k8s_openapi::api::core::v1::Event = serde_json::from_value(core).unwrap();
        assert_eq!(typed.involved_object.name.as_deref(), Some("shop"));
    }

    #[test]
    fn recorder_writes_events_and_prunes_old_ones() {
        let clock = Arc::new(ManualClock::new("2026-03-01T12:00:00Z".parse().unwrap()));
        let shared: SharedClock = clock.clone();
        let store = Arc::new(Store::new(shared, 1));
        store.create(resources::namespaces(), "", json!({"metadata": {"name": "default"}})).unwrap();
        let recorder = EventRecorder::new(store.clone(), "test");
        let obj = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "shop", "namespace": "default", "uid": "u"}});
        recorder.normal(&obj, "ScalingReplicaSet", "Scaled up to 3");
        let events = store.list_all(resources::events(), Some("default"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["involvedObject"]["name"], "shop");
        clock.advance(chrono::Duration::hours(2));
        for _ in 0..PRUNE_EVERY {
            recorder.warning(&obj, "Again", "again");
        }
        let events = store.list_all(resources::events(), Some("default"));
        assert_eq!(events.len() as u64, PRUNE_EVERY, "the 2-hour-old event is gone");
    }
}
