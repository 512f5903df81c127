//! Kubernetes access through kube-rs: the connection, the actuator for the direct and
//! hpa-floor modes, Kubernetes Events about changes, and the ConfigMap event store.
//!
//! No kube or k8s-openapi type leaves this module: callers see prescale-core types and the
//! provisioner's [`Actuator`] trait.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use prescale_core::{Decision, ReplicaState, ScheduledEvent, SharedClock, WorkloadRef};
use prescale_provisioner::{ActuationOutcome, Actuator, ActuatorError};
use serde_json::json;

use crate::DaemonError;
use crate::config::{KubernetesConnection, Mode};
use crate::store::EventStore;

/// Annotation holding the HPA's own `minReplicas` while prescale raises it.
pub const ANNOTATION_ORIGINAL_FLOOR: &str = "prescale.io/original-min-replicas";
/// Annotation holding when a raised floor expires (RFC 3339) unless prescale renews it.
pub const ANNOTATION_FLOOR_EXPIRES: &str = "prescale.io/floor-expires-at";
/// Field manager name on every write.
const FIELD_MANAGER: &str = "prescale";

/// A connected Kubernetes client (opaque outside this module).
#[derive(Clone)]
pub struct KubeClient(kube::Client);

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeClient")
    }
}

fn kube_error(message: impl std::fmt::Display) -> DaemonError {
    DaemonError::Stage { stage: "kubernetes", message: message.to_string() }
}

/// Connect as configured (the rustls crypto provider must be installed first).
pub async fn connect(connection: &KubernetesConnection) -> Result<KubeClient, DaemonError> {
    let config = match connection {
        KubernetesConnection::Auto => kube::Config::infer().await.map_err(kube_error)?,
        KubernetesConnection::InCluster => kube::Config::incluster().map_err(kube_error)?,
        KubernetesConnection::Kubeconfig { path, context } => {
            let options = kube::config::KubeConfigOptions { context: context.clone(), ..Default::default() };
            match path {
                Some(path) => {
                    let kubeconfig = kube::config::Kubeconfig::read_from(path)
                        .map_err(|e| kube_error(format!("{}: {e}", path.display())))?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(kube_error)?
                }
                None => kube::Config::from_kubeconfig(&options).await.map_err(kube_error)?,
            }
        }
    };
    kube::Client::try_from(config).map(KubeClient).map_err(kube_error)
}

/// Reads a Deployment's replicas and its HPA, and applies decisions by mode.
pub struct KubeActuator {
    client: kube::Client,
    mode: Mode,
    clock: SharedClock,
    floor_ttl: Duration,
}

impl std::fmt::Debug for KubeActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeActuator").field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// Map a kube error to the provisioner's error kinds.
fn actuator_error(workload: &WorkloadRef, error: kube::Error) -> ActuatorError {
    match &error {
        kube::Error::Api(status) if status.code == 404 => ActuatorError::WorkloadNotFound(workload.clone()),
        kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 409 && status.code != 429 => {
            ActuatorError::Rejected { workload: workload.clone(), message: error.to_string() }
        }
        _ => ActuatorError::Unavailable { workload: workload.clone(), message: error.to_string() },
    }
}

impl KubeActuator {
    /// An actuator for `mode`. A raised HPA floor expires `floor_ttl` after its last renewal.
    pub fn new(client: &KubeClient, mode: Mode, clock: SharedClock, floor_ttl: Duration) -> Self {
        Self { client: client.0.clone(), mode, clock, floor_ttl }
    }

    /// The HPA whose scale target is the workload's Deployment, if any.
    async fn find_hpa(&self, workload: &WorkloadRef) -> Result<Option<HorizontalPodAutoscaler>, ActuatorError> {
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &workload.namespace);
        let list = api.list(&ListParams::default()).await.map_err(|e| actuator_error(workload, e))?;
        Ok(list.items.into_iter().find(|hpa| {
            hpa.spec
                .as_ref()
                .is_some_and(|s| s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == workload.name)
        }))
    }

    async fn apply_direct(&self, workload: &WorkloadRef, target: u32) -> Result<ActuationOutcome, ActuatorError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &workload.namespace);
        let scale = api.get_scale(&workload.name).await.map_err(|e| actuator_error(workload, e))?;
        let from = scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        if from == target {
            return Ok(ActuationOutcome::AlreadyAtTarget);
        }
        let patch = json!({ "spec": { "replicas": target } });
        api.patch_scale(&workload.name, &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch))
            .await
            .map_err(|e| actuator_error(workload, e))?;
        Ok(ActuationOutcome::Scaled { from, to: target })
    }

    async fn apply_floor(&self, workload: &WorkloadRef, target: u32) -> Result<ActuationOutcome, ActuatorError> {
        let Some(hpa) = self.find_hpa(workload).await? else {
            return Err(ActuatorError::Rejected {
                workload: workload.clone(),
                message: "no HorizontalPodAutoscaler targets this Deployment; hpa-floor mode raises an existing HPA's minReplicas".into(),
            });
        };
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let annotations = hpa.metadata.annotations.clone().unwrap_or_default();
        let spec = hpa.spec.clone().unwrap_or_default();
        let floor = spec.min_replicas.unwrap_or(1).max(1) as u32;
        let max = spec.max_replicas.max(1) as u32;
        let original = annotations.get(ANNOTATION_ORIGINAL_FLOOR).and_then(|v| v.parse::<u32>().ok()).unwrap_or(floor);
        // Never below the user's own floor, never above the HPA's maximum.
        let wanted = target.max(original).min(max);
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &workload.namespace);
        let patch = if wanted == original {
            if floor == original && !annotations.contains_key(ANNOTATION_ORIGINAL_FLOOR) {
                return Ok(ActuationOutcome::AlreadyAtTarget);
            }
            restore_patch(original)
        } else {
            let expires = self.clock.now() + self.floor_ttl;
            json!({
                "metadata": { "annotations": {
                    ANNOTATION_ORIGINAL_FLOOR: original.to_string(),
                    ANNOTATION_FLOOR_EXPIRES: expires.to_rfc3339(),
                } },
                "spec": { "minReplicas": wanted },
            })
        };
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch))
            .await
            .map_err(|e| actuator_error(workload, e))?;
        if wanted == floor {
            Ok(ActuationOutcome::AlreadyAtTarget)
        } else {
            Ok(ActuationOutcome::FloorSet { from: floor, to: wanted })
        }
    }

    /// Restore the HPA floor of `workload` if prescale raised it and the raise has expired
    /// (after a restart, or when the workload left hpa-floor mode). Returns whether it restored.
    pub async fn restore_expired_floor(&self, workload: &WorkloadRef) -> Result<bool, ActuatorError> {
        let Some(hpa) = self.find_hpa(workload).await? else {
            return Ok(false);
        };
        let annotations = hpa.metadata.annotations.clone().unwrap_or_default();
        let Some(original) = annotations.get(ANNOTATION_ORIGINAL_FLOOR).and_then(|v| v.parse::<u32>().ok()) else {
            return Ok(false);
        };
        let expired = annotations
            .get(ANNOTATION_FLOOR_EXPIRES)
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .is_none_or(|t| t.with_timezone(&Utc) <= self.clock.now());
        if !expired && self.mode == Mode::HpaFloor {
            return Ok(false);
        }
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), &workload.namespace);
        let name = hpa.metadata.name.unwrap_or_default();
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&restore_patch(original)))
            .await
            .map_err(|e| actuator_error(workload, e))?;
        tracing::info!(workload = %workload, original, "restored the HPA's own minReplicas");
        Ok(true)
    }

    /// Record a Kubernetes Event on the Deployment (best effort).
    async fn record_event(&self, workload: &WorkloadRef, reason: &str, message: &str) {
        let now = self.clock.now();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &workload.namespace);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{}.prescale.{:x}", workload.name, now.timestamp_nanos_opt().unwrap_or_default())),
                namespace: Some(workload.namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: Some(workload.name.clone()),
                namespace: Some(workload.namespace.clone()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.chars().take(1000).collect()),
            type_: Some("Normal".into()),
            source: Some(EventSource { component: Some("prescale".into()), ..Default::default() }),
            first_timestamp: Some(Time(to_timestamp(now))),
            last_timestamp: Some(Time(to_timestamp(now))),
            event_time: Some(MicroTime(to_timestamp(now))),
            reporting_component: Some("prescale".into()),
            reporting_instance: Some(std::env::var("HOSTNAME").unwrap_or_else(|_| "prescaled".into())),
            action: Some(reason.into()),
            count: Some(1),
            ..Default::default()
        };
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(workload = %workload, error = %e, "cannot record a Kubernetes Event");
        }
    }
}

fn to_timestamp(t: DateTime<Utc>) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn restore_patch(original: u32) -> serde_json::Value {
    json!({
        "metadata": { "annotations": { ANNOTATION_ORIGINAL_FLOOR: null, ANNOTATION_FLOOR_EXPIRES: null } },
        "spec": { "minReplicas": original },
    })
}

#[async_trait]
impl Actuator for KubeActuator {
    fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    async fn current(&self, workload: &WorkloadRef) -> Result<ReplicaState, ActuatorError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &workload.namespace);
        let deployment = api
            .get_opt(&workload.name)
            .await
            .map_err(|e| actuator_error(workload, e))?
            .ok_or_else(|| ActuatorError::WorkloadNotFound(workload.clone()))?;
        let spec = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32;
        let ready = deployment.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32;
        let hpa_floor =
            self.find_hpa(workload).await?.and_then(|hpa| hpa.spec).map(|s| s.min_replicas.unwrap_or(1).max(0) as u32);
        Ok(ReplicaState { spec, ready, hpa_floor, observed_load: None })
    }

    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        let outcome = match self.mode {
            Mode::ForecastOnly => return Ok(ActuationOutcome::Recorded),
            Mode::Direct => self.apply_direct(workload, decision.target).await?,
            Mode::HpaFloor => self.apply_floor(workload, decision.target).await?,
        };
        match outcome {
            ActuationOutcome::Scaled { from, to } => {
                let message = format!("scaled from {from} to {to}: {}", decision.explanation);
                self.record_event(workload, "PredictiveScale", &message).await;
            }
            ActuationOutcome::FloorSet { from, to } => {
                let message = format!("HPA minReplicas from {from} to {to}: {}", decision.explanation);
                self.record_event(workload, "PredictiveFloor", &message).await;
            }
            _ => {}
        }
        Ok(outcome)
    }
}

/// Events kept in one ConfigMap: one data key per workload (`<namespace>.<name>.json`).
///
/// The ConfigMap must exist (the manifests create it): the daemon may only get and update it.
pub struct ConfigMapEventStore {
    api: Api<ConfigMap>,
    name: String,
}

impl std::fmt::Debug for ConfigMapEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapEventStore").field("name", &self.name).finish_non_exhaustive()
    }
}

impl ConfigMapEventStore {
    /// The store in ConfigMap `namespace/name`.
    pub fn new(client: &KubeClient, namespace: &str, name: &str) -> Self {
        Self { api: Api::namespaced(client.0.clone(), namespace), name: name.to_string() }
    }

    fn error(&self, message: impl std::fmt::Display) -> DaemonError {
        DaemonError::Store { location: format!("ConfigMap {}", self.name), message: message.to_string() }
    }
}

fn data_key(workload: &WorkloadRef) -> String {
    format!("{}.{}.json", workload.namespace, workload.name)
}

#[async_trait]
impl EventStore for ConfigMapEventStore {
    async fn load(&self) -> Result<BTreeMap<WorkloadRef, Vec<ScheduledEvent>>, DaemonError> {
        let cm = self.api.get(&self.name).await.map_err(|e| self.error(e))?;
        let mut out = BTreeMap::new();
        for (key, value) in cm.data.unwrap_or_default() {
            let Some((namespace, name)) = key.strip_suffix(".json").and_then(|k| k.split_once('.')) else {
                continue;
            };
            let events: Vec<ScheduledEvent> =
                serde_json::from_str(&value).map_err(|e| self.error(format!("key {key}: {e}")))?;
            out.insert(WorkloadRef::new(namespace, name), events);
        }
        Ok(out)
    }

    async fn save(&self, workload: &WorkloadRef, events: &[ScheduledEvent]) -> Result<(), DaemonError> {
        let value = serde_json::to_string(events).map_err(|e| self.error(e))?;
        // Optimistic concurrency: replace with the version read; retry on a conflict.
        for _ in 0..5 {
            let mut cm = self.api.get(&self.name).await.map_err(|e| self.error(e))?;
            cm.data.get_or_insert_with(BTreeMap::new).insert(data_key(workload), value.clone());
            match self.api.replace(&self.name, &PostParams::default(), &cm).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(self.error("kept conflicting with other writers after 5 attempts"))
    }
}
