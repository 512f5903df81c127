//! The HPA controller: every sync period, for every `autoscaling/v2`
//! HorizontalPodAutoscaler, runs the provisioner's HPA v2 algorithm on the target
//! Deployment's mean pod CPU utilization, scales the Deployment and writes the HPA's
//! status (currentReplicas, desiredReplicas, currentMetrics, conditions).
//!
//! CPU utilization is read from the pods' capacity model (busy workers / workers over
//! the CPU window), relative to the pod's CPU request (its worker count), for Ready
//! pods only, as Kubernetes does for scale decisions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use prescale_provisioner::hpa::{HpaAlgorithm, HpaSpec};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::events::EventRecorder;
use crate::kubelet::PodRegistry;
use crate::resources;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::Store;

/// Kubernetes' default CPU target when an HPA lists no metrics.
const DEFAULT_CPU_TARGET: f64 = 0.8;

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The algorithm's spec from an HPA object; Err names what the controller cannot act on.
pub(crate) fn spec_from_object(hpa: &Value, sync_period: Duration) -> Result<HpaSpec, String> {
    let mut spec = HpaSpec {
        sync_period: ChronoDuration::from_std(sync_period).unwrap_or(ChronoDuration::seconds(15)),
        ..HpaSpec::default()
    };
    spec.min_replicas = hpa.pointer("/spec/minReplicas").and_then(Value::as_u64).unwrap_or(1) as u32;
    spec.max_replicas =
        hpa.pointer("/spec/maxReplicas").and_then(Value::as_u64).ok_or("spec.maxReplicas is missing")? as u32;
    spec.target_utilization = match hpa.pointer("/spec/metrics").and_then(Value::as_array) {
        None => DEFAULT_CPU_TARGET,
        Some(metrics) if metrics.is_empty() => DEFAULT_CPU_TARGET,
        Some(metrics) => {
            let cpu = metrics
                .iter()
                .find(|m| m["type"] == "Resource" && m.pointer("/resource/name") == Some(&json!("cpu")))
                .ok_or("only a Resource metric on cpu is supported, and spec.metrics has none")?;
            let percent = cpu
                .pointer("/resource/target/averageUtilization")
                .and_then(Value::as_f64)
                .ok_or("the cpu metric must have target.type Utilization with averageUtilization")?;
            percent / 100.0
        }
    };
    if let Some(window) = hpa.pointer("/spec/behavior/scaleDown/stabilizationWindowSeconds").and_then(Value::as_i64) {
        spec.scale_down_stabilization = ChronoDuration::seconds(window.max(0));
    }
    if let Some(period) = hpa.pointer("/spec/behavior/scaleUp/policies/0/periodSeconds").and_then(Value::as_i64) {
        spec.scale_up_period = ChronoDuration::seconds(period.max(1));
    }
    spec.validate().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// A condition keeping its transition time while its status holds.
fn condition(old: &Value, kind: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let transition = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition})
}

/// The HPA controller.
#[derive(Debug)]
pub(crate) struct HpaController {
    store: Arc<Store>,
    registry: Arc<PodRegistry>,
    events: EventRecorder,
    sync_period: Duration,
    /// Algorithm state per HPA uid, with the spec it was built from (minReplicas aside).
    algorithms: HashMap<String, (HpaSpec, HpaAlgorithm)>,
}

impl HpaController {
    /// A controller syncing every `sync_period` of cluster-clock time.
    pub fn new(store: Arc<Store>, registry: Arc<PodRegistry>, sync_period: Duration) -> Self {
        let events = EventRecorder::new(store.clone(), "horizontal-pod-autoscaler");
        Self { store, registry, events, sync_period, algorithms: HashMap::new() }
    }

    /// Sync every period until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let clock = self.store.clock().clone();
        let period = ChronoDuration::from_std(self.sync_period).unwrap_or(ChronoDuration::seconds(15));
        loop {
            tokio::select! {
                _ = clock.sleep(period) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            self.sync_all();
        }
    }

    /// One sync of every HPA.
    pub fn sync_all(&mut self) {
        let hpas = self.store.list_all(resources::hpas(), None);
        let live: Vec<String> = hpas.iter().map(|h| str_at(h, "/metadata/uid").to_string()).collect();
        self.algorithms.retain(|uid, _| live.contains(uid));
        for hpa in &hpas {
            if let Err(e) = self.sync_one(hpa) {
                tracing::debug!(hpa = str_at(hpa, "/metadata/name"), error = %e.message, "hpa sync failed");
            }
        }
    }

    /// Mean CPU utilization and mean cores in use of the Deployment's Ready pods, None when
    /// none is Ready.
    fn utilization(&self, deployment: &Value) -> Option<(f64, f64)> {
        let namespace = str_at(deployment, "/metadata/namespace");
        let selector = LabelSelector::from_object(deployment.pointer("/spec/selector")?).ok()?;
        let pods = self.store.list_all(resources::pods(), Some(namespace));
        let values: Vec<(f64, f64)> = pods
            .iter()
            .filter(|p| selector.matches(p) && p.pointer("/metadata/deletionTimestamp").is_none())
            .filter_map(|p| self.registry.get(str_at(p, "/metadata/uid")))
            .filter(|r| r.serving())
            .map(|r| (r.server.model.cpu_utilization(), r.server.model.cpu_cores()))
            .collect();
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        Some((values.iter().map(|v| v.0).sum::<f64>() / n, values.iter().map(|v| v.1).sum::<f64>() / n))
    }

    fn sync_one(&mut self, hpa: &Value) -> Result<(), ApiError> {
        let namespace = str_at(hpa, "/metadata/namespace").to_string();
        let name = str_at(hpa, "/metadata/name").to_string();
        let uid = str_at(hpa, "/metadata/uid").to_string();
        let now = self.store.clock().now();
        let stamp = self.store.now_string();
        let spec = match spec_from_object(hpa, self.sync_period) {
            Ok(spec) => spec,
            Err(message) => {
                let conditions =
                    vec![condition(hpa, "ScalingActive", false, "InvalidMetricSourceType", &message, &stamp)];
                return self.write_status(&namespace, &name, json!({"conditions": conditions}), hpa);
            }
        };
        let target_kind = str_at(hpa, "/spec/scaleTargetRef/kind");
        let target_name = str_at(hpa, "/spec/scaleTargetRef/name");
        let deployment = if target_kind == "Deployment" {
            self.store.get(resources::deployments(), &namespace, target_name).ok()
        } else {
            None
        };
        let Some(deployment) = deployment else {
            let message = format!(
                "the HPA controller was unable to get the target's current scale: {target_kind}/{target_name} not found"
            );
            let conditions = vec![condition(hpa, "AbleToScale", false, "FailedGetScale", &message, &stamp)];
            self.events.warning(hpa, "FailedGetScale", &message);
            return self.write_status(&namespace, &name, json!({"conditions": conditions}), hpa);
        };
        let measured = self.utilization(&deployment);
        let utilization = measured.map(|m| m.0);
        let entry = self.algorithms.entry(uid).or_insert_with(|| (spec, HpaAlgorithm::new(spec)));
        if entry.0 != spec {
            if (HpaSpec { min_replicas: entry.0.min_replicas, ..spec }) == entry.0 {
                entry.1.set_min_replicas(spec.min_replicas);
            } else {
                entry.1 = HpaAlgorithm::new(spec);
            }
            entry.0 = spec;
        }
        let current = deployment.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1) as u32;
        let desired = entry.1.sync(now, current, utilization);
        let mut last_scale = hpa.pointer("/status/lastScaleTime").cloned();
        if desired != current {
            self.store.mutate(resources::deployments(), &namespace, target_name, |o| {
                o["spec"]["replicas"] = json!(desired);
                Ok(())
            })?;
            let reason = match utilization {
                _ if current < spec.min_replicas => "Current number of replicas below Spec.MinReplicas".to_string(),
                _ if current > spec.max_replicas => "Current number of replicas above Spec.MaxReplicas".to_string(),
                Some(_) if desired > current => {
                    "cpu resource utilization (percentage of request) above target".to_string()
                }
                _ => "All metrics below target".to_string(),
            };
            self.events.normal(hpa, "SuccessfulRescale", &format!("New size: {desired}; reason: {reason}"));
            last_scale = Some(json!(stamp));
        }
        let mut status = json!({
            "currentReplicas": current,
            "desiredReplicas": desired,
            "conditions": [
                condition(hpa, "AbleToScale", true, "ReadyForNewScale", "recommended size matches current size", &stamp),
                match utilization {
                    Some(_) => condition(hpa, "ScalingActive", true, "ValidMetricFound",
                        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)", &stamp),
                    None => condition(hpa, "ScalingActive", false, "FailedGetResourceMetric",
                        "the HPA was unable to compute the replica count: no ready pods with metrics", &stamp),
                },
                condition(hpa, "ScalingLimited", desired == spec.max_replicas || desired == spec.min_replicas,
                    if desired == spec.max_replicas { "TooManyReplicas" } else if desired == spec.min_replicas { "TooFewReplicas" } else { "DesiredWithinRange" },
                    "the desired count is within the acceptable range", &stamp),
            ],
        });
        if let Some((u, cores)) = measured {
            status["currentMetrics"] = json!([{
                "type": "Resource",
                "resource": {"name": "cpu", "current": {
                    "averageUtilization": (u * 100.0).round() as i64,
                    "averageValue": format!("{}m", (cores * 1000.0).round() as i64),
                }},
            }]);
        }
        if let Some(t) = last_scale {
            status["lastScaleTime"] = t;
        }
        if let Some(g) = hpa.pointer("/metadata/generation") {
            status["observedGeneration"] = g.clone();
        }
        self.write_status(&namespace, &name, status, hpa)
    }

    fn write_status(&self, namespace: &str, name: &str, status: Value, hpa: &Value) -> Result<(), ApiError> {
        if hpa.get("status") == Some(&status) {
            return Ok(());
        }
        let uid = str_at(hpa, "/metadata/uid").to_string();
        self.store.mutate(resources::hpas(), namespace, name, |o| {
            if str_at(o, "/metadata/uid") != uid {
                return Err(ApiError::not_found(resources::hpas(), name));
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
    fn spec_reads_cpu_target_and_behavior() {
        let hpa = json!({"spec": {"minReplicas": 2, "maxReplicas": 12,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
        let spec = spec_from_object(&hpa, Duration::from_secs(15)).unwrap();
        assert_eq!((spec.min_replicas, spec.max_replicas), (2, 12));
        assert!((spec.target_utilization - 0.6).abs() < 1e-9);
        assert_eq!(spec.scale_down_stabilization, ChronoDuration::seconds(60));
        let no_metrics = json!({"spec": {"maxReplicas": 3}});
        assert!(
            (spec_from_object(&no_metrics, Duration::from_secs(15)).unwrap().target_utilization - 0.8).abs() < 1e-9
        );
        let memory =
            json!({"spec": {"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {"name": "memory"}}]}});
        assert!(spec_from_object(&memory, Duration::from_secs(15)).unwrap_err().contains("cpu"));
    }
}
