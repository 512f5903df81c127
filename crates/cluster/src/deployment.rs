//! The deployment controller: keeps as many pods as `spec.replicas` asks, rolls out
//! template changes, writes the Deployment's status, and collects pods whose
//! Deployment is gone.
//!
//! Pods are named `<deployment>-<template hash>-<suffix>`, carry the template's
//! labels plus `pod-template-hash`, and are owned by the Deployment directly (there
//! are no ReplicaSet objects). Scale-down deletes unready pods first, then the
//! newest, as Kubernetes does; a template change replaces old pods once new ones
//! are Ready.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::events::EventRecorder;
use crate::kubelet::delete_pod;
use crate::resources;
use crate::status::ApiError;
use crate::store::Store;

/// Label carrying the template hash, as Kubernetes names it.
pub(crate) const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

const HASH_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// JSON with object keys sorted, so equal templates hash equally.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A 10-character hash of a pod template (FNV-1a, Kubernetes' alphabet).
pub(crate) fn template_hash(template: &Value) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = HASH_ALPHABET[(h % HASH_ALPHABET.len() as u64) as usize] as char;
            h /= HASH_ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn is_deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

fn owner_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["kind"] == "Deployment" && r["controller"] == true))
        .and_then(|r| r["uid"].as_str())
}

/// Order of deletion on scale-down: unready first, then newest first.
fn deletion_order(a: &&Value, b: &&Value) -> std::cmp::Ordering {
    is_ready(a)
        .cmp(&is_ready(b))
        .then_with(|| str_at(b, "/metadata/creationTimestamp").cmp(str_at(a, "/metadata/creationTimestamp")))
        .then_with(|| str_at(b, "/metadata/name").cmp(str_at(a, "/metadata/name")))
}

/// A condition with its timestamps kept when nothing about it changed.
fn condition(old: Option<&Value>, kind: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = old
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let transition = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let update = match previous {
        Some(p) if p["status"] == status && p["reason"] == reason && p["message"] == message => {
            p["lastUpdateTime"].clone()
        }
        _ => json!(now),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": update, "lastTransitionTime": transition})
}

/// The deployment controller.
#[derive(Debug, Clone)]
pub(crate) struct DeploymentController {
    store: Arc<Store>,
    events: EventRecorder,
    default_grace_seconds: i64,
}

impl DeploymentController {
    /// A controller over `store`; new pods get `default_grace` as their termination grace period.
    pub fn new(store: Arc<Store>, default_grace: Duration) -> Self {
        let events = EventRecorder::new(store.clone(), "deployment-controller");
        let default_grace_seconds = i64::try_from(default_grace.as_secs()).unwrap_or(30);
        Self { store, events, default_grace_seconds }
    }

    /// Reconcile on every store change until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.store.subscribe();
        loop {
            self.reconcile_all();
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                _ = shutdown.wait_for(|s| *s) => break,
            }
            // Let a burst of writes land before the next pass.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// One pass over every Deployment.
    pub fn reconcile_all(&self) {
        let deployments = self.store.list_all(resources::deployments(), None);
        let pods = self.store.list_all(resources::pods(), None);
        let live: Vec<&str> = deployments.iter().map(|d| str_at(d, "/metadata/uid")).collect();
        for pod in &pods {
            if let Some(owner) = owner_uid(pod)
                && !live.contains(&owner)
                && !is_deleting(pod)
            {
                let _ = delete_pod(
                    &self.store,
                    str_at(pod, "/metadata/namespace"),
                    str_at(pod, "/metadata/name"),
                    None,
                    None,
                    None,
                );
            }
        }
        for d in &deployments {
            if let Err(e) = self.reconcile(d, &pods) {
                tracing::warn!(deployment = str_at(d, "/metadata/name"), error = %e.message, "deployment reconcile failed");
            }
        }
    }

    fn reconcile(&self, d: &Value, all_pods: &[Value]) -> Result<(), ApiError> {
        let namespace = str_at(d, "/metadata/namespace");
        let name = str_at(d, "/metadata/name");
        let uid = str_at(d, "/metadata/uid");
        let replicas = d.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1) as usize;
        let template = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
        let hash = template_hash(&template);
        let owned: Vec<&Value> = all_pods.iter().filter(|p| owner_uid(p) == Some(uid)).collect();
        let active: Vec<&Value> = owned.iter().copied().filter(|p| !is_deleting(p)).collect();
        let (mut new, mut old): (Vec<&Value>, Vec<&Value>) =
            active.iter().partition(|p| str_at(p, &format!("/metadata/labels/{TEMPLATE_HASH_LABEL}")) == hash);

        if new.len() < replicas {
            let from = new.len();
            for _ in from..replicas {
                self.create_pod(d, &template, &hash)?;
            }
            self.events.normal(
                d,
                "ScalingReplicaSet",
                &format!("Scaled up replica set {name}-{hash} from {from} to {replicas}"),
            );
        } else if new.len() > replicas {
            let from = new.len();
            new.sort_by(deletion_order);
            for pod in new.iter().take(from - replicas) {
                delete_pod(&self.store, namespace, str_at(pod, "/metadata/name"), None, None, None)?;
            }
            self.events.normal(
                d,
                "ScalingReplicaSet",
                &format!("Scaled down replica set {name}-{hash} from {from} to {replicas}"),
            );
        }
        // Old pods go as new ones become Ready (no capacity lost during a rollout).
        let ready_new = new.iter().filter(|p| is_ready(p)).count().min(replicas);
        let keep_old = replicas - ready_new;
        if old.len() > keep_old {
            old.sort_by(deletion_order);
            let excess = old.len() - keep_old;
            for pod in old.iter().take(excess) {
                delete_pod(&self.store, namespace, str_at(pod, "/metadata/name"), None, None, None)?;
            }
            self.events.normal(d, "ScalingReplicaSet", &format!("Scaled down old pods of {name} by {excess}"));
        }
        self.write_status(d, &hash)
    }

    fn create_pod(&self, d: &Value, template: &Value, hash: &str) -> Result<(), ApiError> {
        let namespace = str_at(d, "/metadata/namespace");
        let name = str_at(d, "/metadata/name");
        let mut labels: Map<String, Value> =
            template.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
        labels.insert(TEMPLATE_HASH_LABEL.to_string(), json!(hash));
        let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
        if spec.get("terminationGracePeriodSeconds").is_none() {
            spec["terminationGracePeriodSeconds"] = json!(self.default_grace_seconds);
        }
        let mut last_error = None;
        for _ in 0..5 {
            let pod_name = format!("{name}-{hash}-{}", self.store.random_suffix(5));
            let mut pod = json!({
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": labels,
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                        "uid": str_at(d, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
                    }],
                },
                "spec": spec,
            });
            if let Some(annotations) = template.pointer("/metadata/annotations") {
                pod["metadata"]["annotations"] = annotations.clone();
            }
            match self.store.create(resources::pods(), namespace, pod) {
                Ok(created) => {
                    self.events.normal(&created, "Scheduled", &format!("Successfully assigned {namespace}/{pod_name}"));
                    return Ok(());
                }
                Err(e) if e.reason == "AlreadyExists" => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ApiError::internal("could not name a new pod")))
    }

    fn write_status(&self, d: &Value, hash: &str) -> Result<(), ApiError> {
        let namespace = str_at(d, "/metadata/namespace");
        let name = str_at(d, "/metadata/name");
        let uid = str_at(d, "/metadata/uid");
        let pods = self.store.list_all(resources::pods(), Some(namespace));
        let active: Vec<&Value> = pods.iter().filter(|p| owner_uid(p) == Some(uid) && !is_deleting(p)).collect();
        let total = active.len() as i64;
        let updated =
            active.iter().filter(|p| str_at(p, &format!("/metadata/labels/{TEMPLATE_HASH_LABEL}")) == hash).count()
                as i64;
        let ready = active.iter().filter(|p| is_ready(p)).count() as i64;
        let replicas = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let max_unavailable = replicas / 4;
        let now = self.store.now_string();
        let old_status = d.get("status");
        let available_ok = ready >= replicas - max_unavailable;
        let available = condition(
            old_status,
            "Available",
            available_ok,
            if available_ok { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
            if available_ok {
                "Deployment has minimum availability."
            } else {
                "Deployment does not have minimum availability."
            },
            &now,
        );
        let complete = updated == replicas && ready >= replicas && total == replicas;
        let progressing = condition(
            old_status,
            "Progressing",
            true,
            if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
            &if complete {
                format!("ReplicaSet \"{name}-{hash}\" has successfully progressed.")
            } else {
                format!("ReplicaSet \"{name}-{hash}\" is progressing.")
            },
            &now,
        );
        let mut status = json!({
            "observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "conditions": [available, progressing],
        });
        for (field, value) in [
            ("replicas", total),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
            ("unavailableReplicas", (replicas - ready).max(0)),
        ] {
            // Zero counts are omitted, as the real API server does.
            if value > 0 {
                status[field] = json!(value);
            }
        }
        if old_status == Some(&status) {
            return Ok(());
        }
        self.store.mutate(resources::deployments(), namespace, name, |o| {
            if o.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                return Err(ApiError::not_found(resources::deployments(), name));
            }
            o["status"] = status;
            Ok(())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hash_ignores_key_order_and_changes_with_content() {
        let a = json!({"metadata": {"labels": {"app": "x", "tier": "web"}}, "spec": {"containers": [{"name": "c"}]}});
        let b = json!({"spec": {"containers": [{"name": "c"}]}, "metadata": {"labels": {"tier": "web", "app": "x"}}});
        let c = json!({"spec": {"containers": [{"name": "d"}]}, "metadata": {"labels": {"tier": "web", "app": "x"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_ne!(template_hash(&a), template_hash(&c));
        assert_eq!(template_hash(&a).len(), 10);
    }

    #[test]
    fn scale_down_deletes_unready_then_newest() {
        let ready = |name: &str, created: &str, r: bool| {
            json!({"metadata": {"name": name, "creationTimestamp": created},
                "status": {"conditions": [{"type": "Ready", "status": if r { "True" } else { "False" }}]}})
        };
        let pods = [
            ready("old-ready", "2026-01-01T00:00:00Z", true),
            ready("new-ready", "2026-01-01T00:05:00Z", true),
            ready("unready", "2026-01-01T00:01:00Z", false),
        ];
        let mut order: Vec<&Value> = pods.iter().collect();
        order.sort_by(deletion_order);
        let names: Vec<&str> = order.iter().map(|p| str_at(p, "/metadata/name")).collect();
        assert_eq!(names, vec!["unready", "new-ready", "old-ready"]);
    }

    #[test]
    fn condition_keeps_timestamps_when_unchanged() {
        let old = json!({"conditions": [{"type": "Available", "status": "True", "reason": "R", "message": "M",
            "lastUpdateTime": "t0", "lastTransitionTime": "t0"}]});
        let c = condition(Some(&old), "Available", true, "R", "M", "t1");
        assert_eq!((c["lastUpdateTime"].as_str(), c["lastTransitionTime"].as_str()), (Some("t0"), Some("t0")));
        let c = condition(Some(&old), "Available", false, "R2", "M", "t1");
        assert_eq!(c["lastTransitionTime"], "t1");
    }
}
