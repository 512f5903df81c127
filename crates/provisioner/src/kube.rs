//! Kubernetes actuation through kube-rs: [`KubeActuator`] for the `direct` and `hpa-floor`
//! modes (and read-only forecast-only), with Kubernetes Events about every scaling action.
//!
//! - `direct` merge-patches `deployments/{name}/scale` (`spec.replicas`).
//! - `hpa-floor` merge-patches the user's `autoscaling/v2` HPA: `spec.minReplicas`, plus
//!   annotations with the user's own floor, the floor prescale set and when the raise expires.
//!   An expired raise is restored ([`Actuator::restore_expired`]), so a raised floor never
//!   outlives its reason, across restarts too; [`KubeActuator::release`] restores them all.
//!   A second HPA is never created: two HPAs on one Deployment disable each other.
//!
//! Every write names the field manager `prescale` and carries the `resourceVersion` it was
//! computed from, so a concurrent change answers 409 and the write is recomputed from a fresh
//! read (a few times). No kube or k8s-openapi type leaves this module.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use prescale_core::{Decision, ReplicaState, ScaleDirection, SharedClock, WorkloadRef};
use serde_json::{Value, json};

use crate::{ActuationOutcome, Actuator, ActuatorError, ProvisionerError};

/// HPA annotation: the user's own `minReplicas` while prescale raises it.
pub const ANNOTATION_ORIGINAL_FLOOR: &str = "prescale.io/original-min-replicas";
/// HPA annotation: the `minReplicas` prescale set (a different value means the user changed it since).
pub const ANNOTATION_RAISED_FLOOR: &str = "prescale.io/raised-min-replicas";
/// HPA annotation: when the raised floor expires (RFC 3339) unless prescale renews it.
pub const ANNOTATION_FLOOR_EXPIRES: &str = "prescale.io/floor-expires-at";
/// Annotation on the object prescale changes (HPA or Deployment): the last decision, as JSON.
pub const ANNOTATION_LAST_DECISION: &str = "prescale.io/last-decision";
/// Event reason of an action that adds capacity.
pub const REASON_SCALE_UP: &str = "PredictiveScaleUp";
/// Event reason of an action that removes capacity (a lowered or restored floor included).
pub const REASON_SCALE_DOWN: &str = "PredictiveScaleDown";
/// Field manager of every write.
pub const FIELD_MANAGER: &str = "prescale";
/// Attempts of one write that keeps meeting concurrent changes (409).
const MAX_ATTEMPTS: usize = 5;
/// Longest Event message kept.
const MAX_MESSAGE_CHARS: usize = 1000;

/// How to reach the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeConnection {
    /// The pod's service account in a cluster, else the kubeconfig (kube-rs' inference).
    Infer,
    /// The pod's service account.
    InCluster,
    /// A kubeconfig file (default `$KUBECONFIG` or `~/.kube/config`) and context.
    Kubeconfig {
        /// The file, if not the default.
        path: Option<PathBuf>,
        /// The context, if not the current one.
        context: Option<String>,
    },
}

/// What a [`KubeActuator`] may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeMode {
    /// Read only: `apply` records nothing and sends no request.
    ForecastOnly,
    /// `spec.replicas` through the Deployment's scale subresource.
    Direct,
    /// The existing HPA's `spec.minReplicas`.
    HpaFloor,
}

impl KubeMode {
    fn as_str(self) -> &'static str {
        match self {
            KubeMode::ForecastOnly => "forecast-only",
            KubeMode::Direct => "direct",
            KubeMode::HpaFloor => "hpa-floor",
        }
    }
}

/// A floor [`KubeActuator::release`] (or a restore) put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredFloor {
    /// The Deployment the HPA scales.
    pub workload: WorkloadRef,
    /// The HPA's name.
    pub hpa: String,
    /// The floor prescale had set.
    pub from: u32,
    /// The user's own floor, now restored.
    pub to: u32,
}

/// Reads a Deployment's replicas and its HPA, and applies decisions in one [`KubeMode`].
///
/// Create one with [`KubeActuator::connect`], and others sharing its connection with
/// [`KubeActuator::with_mode`].
pub struct KubeActuator {
    client: kube::Client,
    mode: KubeMode,
    clock: SharedClock,
    identity: String,
    annotation_denied: AtomicBool,
}

impl std::fmt::Debug for KubeActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeActuator").field("mode", &self.mode).finish_non_exhaustive()
    }
}

fn connect_error(reason: impl std::fmt::Display) -> ProvisionerError {
    ProvisionerError::InvalidConfig { section: "kubernetes", field: "connection", reason: reason.to_string() }
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

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

fn patch_params() -> PatchParams {
    PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() }
}

fn to_timestamp(t: DateTime<Utc>) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn annotation_u32(hpa: &HorizontalPodAutoscaler, key: &str) -> Option<u32> {
    hpa.metadata.annotations.as_ref()?.get(key)?.trim().parse().ok()
}

fn annotation_time(hpa: &HorizontalPodAutoscaler, key: &str) -> Option<DateTime<Utc>> {
    let text = hpa.metadata.annotations.as_ref()?.get(key)?;
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

fn floor_of(hpa: &HorizontalPodAutoscaler) -> u32 {
    hpa.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1).max(0) as u32
}

fn targets(hpa: &HorizontalPodAutoscaler, deployment: &str) -> bool {
    hpa.spec.as_ref().is_some_and(|s| s.scale_target_ref.kind == "Deployment" && s.scale_target_ref.name == deployment)
}

/// The user's own floor recorded on an HPA prescale raised, or `None` when it is not raised.
/// When the user changed `minReplicas` since prescale set it, their new value is their floor.
fn user_floor(hpa: &HorizontalPodAutoscaler) -> Option<u32> {
    let original = annotation_u32(hpa, ANNOTATION_ORIGINAL_FLOOR)?;
    match annotation_u32(hpa, ANNOTATION_RAISED_FLOOR) {
        Some(raised) if raised != floor_of(hpa) => Some(floor_of(hpa)),
        _ => Some(original),
    }
}

fn decision_json(decision: &Decision) -> String {
    json!({
        "at": decision.at.to_rfc3339(),
        "current": decision.current,
        "target": decision.target,
        "direction": decision.direction.as_str(),
        "explanation": decision.explanation,
    })
    .to_string()
}

/// The patch putting the user's floor back and removing prescale's annotations.
fn restore_patch(resource_version: Option<&str>, original: u32) -> Value {
    json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {
                ANNOTATION_ORIGINAL_FLOOR: null,
                ANNOTATION_RAISED_FLOOR: null,
                ANNOTATION_FLOOR_EXPIRES: null,
            },
        },
        "spec": { "minReplicas": original },
    })
}

impl KubeActuator {
    /// Connect as `connection` says (the rustls crypto provider must be installed first) and
    /// act in `mode`. Fails with [`ProvisionerError::InvalidConfig`] when no client can be built.
    pub async fn connect(
        connection: &KubeConnection,
        mode: KubeMode,
        clock: SharedClock,
    ) -> Result<Self, ProvisionerError> {
        let config = match connection {
            KubeConnection::Infer => kube::Config::infer().await.map_err(connect_error)?,
            KubeConnection::InCluster => kube::Config::incluster().map_err(connect_error)?,
            KubeConnection::Kubeconfig { path, context } => {
                let options = kube::config::KubeConfigOptions { context: context.clone(), ..Default::default() };
                match path {
                    Some(path) => {
                        let kubeconfig = kube::config::Kubeconfig::read_from(path)
                            .map_err(|e| connect_error(format!("{}: {e}", path.display())))?;
                        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(connect_error)?
                    }
                    None => kube::Config::from_kubeconfig(&options).await.map_err(connect_error)?,
                }
            }
        };
        let client = kube::Client::try_from(config).map_err(connect_error)?;
        Ok(Self::from_client(client, mode, clock))
    }

    pub(crate) fn from_client(client: kube::Client, mode: KubeMode, clock: SharedClock) -> Self {
        let identity = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "prescaled".into());
        Self { client, mode, clock, identity, annotation_denied: AtomicBool::new(false) }
    }

    /// An actuator in `mode` over the same connection.
    pub fn with_mode(&self, mode: KubeMode) -> Self {
        Self {
            client: self.client.clone(),
            mode,
            clock: self.clock.clone(),
            identity: self.identity.clone(),
            annotation_denied: AtomicBool::new(false),
        }
    }

    /// Its mode.
    pub fn kube_mode(&self) -> KubeMode {
        self.mode
    }

    fn hpas(&self, namespace: &str) -> Api<HorizontalPodAutoscaler> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The HPA whose scale target is the workload's Deployment, if any.
    async fn find_hpa(&self, workload: &WorkloadRef) -> Result<Option<HorizontalPodAutoscaler>, ActuatorError> {
        let list = self
            .hpas(&workload.namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| actuator_error(workload, e))?;
        Ok(list.items.into_iter().find(|hpa| targets(hpa, &workload.name)))
    }

    async fn apply_direct(
        &self,
        workload: &WorkloadRef,
        decision: &Decision,
    ) -> Result<ActuationOutcome, ActuatorError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &workload.namespace);
        for _ in 0..MAX_ATTEMPTS {
            let scale = api.get_scale(&workload.name).await.map_err(|e| actuator_error(workload, e))?;
            let from = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
            if from == decision.target {
                return Ok(ActuationOutcome::AlreadyAtTarget);
            }
            let patch = json!({
                "metadata": { "resourceVersion": scale.metadata.resource_version },
                "spec": { "replicas": decision.target },
            });
            match api.patch_scale(&workload.name, &patch_params(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.annotate_deployment(workload, decision).await;
                    return Ok(ActuationOutcome::Scaled { from, to: decision.target });
                }
                Err(e) if is_conflict(&e) => {
                    tracing::debug!(workload = %workload, "the scale changed under the write; reading it again");
                }
                Err(e) => return Err(actuator_error(workload, e)),
            }
        }
        Err(self.conflicts(workload))
    }

    fn conflicts(&self, workload: &WorkloadRef) -> ActuatorError {
        ActuatorError::Unavailable {
            workload: workload.clone(),
            message: format!("kept conflicting with concurrent changes after {MAX_ATTEMPTS} attempts"),
        }
    }

    /// Record the last decision on the Deployment (direct mode). Best effort: the scale
    /// subresource cannot carry annotations, and writing the Deployment itself needs `patch`
    /// on `deployments`, which the least-privilege role does not grant; a denial is logged once.
    async fn annotate_deployment(&self, workload: &WorkloadRef, decision: &Decision) {
        if self.annotation_denied.load(Ordering::Relaxed) {
            return;
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &workload.namespace);
        let patch = json!({ "metadata": { "annotations": { ANNOTATION_LAST_DECISION: decision_json(decision) } } });
        match api.patch(&workload.name, &patch_params(), &Patch::Merge(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 403 => {
                self.annotation_denied.store(true, Ordering::Relaxed);
                tracing::info!(workload = %workload, "not allowed to annotate Deployments; the last decision is in the Events only");
            }
            Err(e) => {
                tracing::warn!(workload = %workload, error = %e, "cannot annotate the Deployment with the last decision")
            }
        }
    }

    async fn apply_floor(
        &self,
        workload: &WorkloadRef,
        decision: &Decision,
        hold_until: DateTime<Utc>,
    ) -> Result<ActuationOutcome, ActuatorError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(hpa) = self.find_hpa(workload).await? else {
                return Err(ActuatorError::Rejected {
                    workload: workload.clone(),
                    message: "no HorizontalPodAutoscaler targets this Deployment; hpa-floor mode raises an existing \
                              HPA's minReplicas and never creates one (use mode direct without an HPA)"
                        .into(),
                });
            };
            let name = hpa.metadata.name.clone().unwrap_or_default();
            let floor = floor_of(&hpa);
            let original = user_floor(&hpa);
            let own = original.unwrap_or(floor);
            let max = hpa.spec.as_ref().map_or(1, |s| s.max_replicas.max(1)) as u32;
            // Never below the user's own floor, never above the HPA's maximum.
            let wanted = decision.target.clamp(own.min(max), max);
            let rv = hpa.metadata.resource_version.as_deref();
            let patch = if wanted == own {
                if original.is_none() {
                    return Ok(ActuationOutcome::AlreadyAtTarget);
                }
                let mut patch = restore_patch(rv, own);
                patch["metadata"]["annotations"][ANNOTATION_LAST_DECISION] = json!(decision_json(decision));
                patch
            } else {
                let expires = annotation_time(&hpa, ANNOTATION_FLOOR_EXPIRES);
                // Renew only when the hold moved well past the recorded expiry: fewer writes.
                let remaining = (hold_until - self.clock.now()).max(chrono::Duration::zero());
                let renew = expires.is_none_or(|e| e + remaining / 4 < hold_until);
                if wanted == floor && !renew {
                    return Ok(ActuationOutcome::AlreadyAtTarget);
                }
                json!({
                    "metadata": {
                        "resourceVersion": rv,
                        "annotations": {
                            ANNOTATION_ORIGINAL_FLOOR: own.to_string(),
                            ANNOTATION_RAISED_FLOOR: wanted.to_string(),
                            ANNOTATION_FLOOR_EXPIRES: hold_until.to_rfc3339(),
                            ANNOTATION_LAST_DECISION: decision_json(decision),
                        },
                    },
                    "spec": { "minReplicas": wanted },
                })
            };
            match self.hpas(&workload.namespace).patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
                Ok(_) if wanted == floor => return Ok(ActuationOutcome::AlreadyAtTarget),
                Ok(_) => return Ok(ActuationOutcome::FloorSet { from: floor, to: wanted }),
                Err(e) if is_conflict(&e) => {
                    tracing::debug!(workload = %workload, hpa = %name, "the HPA changed under the write; reading it again");
                }
                Err(e) => return Err(actuator_error(workload, e)),
            }
        }
        Err(self.conflicts(workload))
    }

    /// Put the user's floor back on `hpa` (re-reading it on conflicts); `None` if not raised.
    async fn restore(
        &self,
        workload: &WorkloadRef,
        mut hpa: HorizontalPodAutoscaler,
        why: &str,
    ) -> Result<Option<RestoredFloor>, ActuatorError> {
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let api = self.hpas(&workload.namespace);
        for _ in 0..MAX_ATTEMPTS {
            let Some(original) = user_floor(&hpa) else {
                return Ok(None);
            };
            let from = floor_of(&hpa);
            let patch = restore_patch(hpa.metadata.resource_version.as_deref(), original);
            match api.patch(&name, &patch_params(), &Patch::Merge(&patch)).await {
                Ok(_) => {
                    let restored = RestoredFloor { workload: workload.clone(), hpa: name.clone(), from, to: original };
                    tracing::info!(workload = %workload, hpa = %name, from, to = original, why, "restored the HPA's own minReplicas");
                    let message = format!("restored the HPA {name}'s own minReplicas {original} (was {from}): {why}");
                    let reason = if original < from { REASON_SCALE_DOWN } else { REASON_SCALE_UP };
                    self.record_event(workload, reason, &message).await;
                    return Ok(Some(restored));
                }
                Err(e) if is_conflict(&e) => {
                    hpa = api.get(&name).await.map_err(|e| actuator_error(workload, e))?;
                }
                Err(e) => return Err(actuator_error(workload, e)),
            }
        }
        Err(self.conflicts(workload))
    }

    /// Restore every floor prescale raised on the HPAs of `namespace`, expired or not
    /// (`prescaled release`, the step before uninstalling).
    pub async fn release(&self, namespace: &str) -> Result<Vec<RestoredFloor>, ActuatorError> {
        let anyone = WorkloadRef::new(namespace, "*");
        let list = self.hpas(namespace).list(&ListParams::default()).await.map_err(|e| actuator_error(&anyone, e))?;
        let mut restored = Vec::new();
        for hpa in list.items {
            if user_floor(&hpa).is_none() {
                continue;
            }
            let deployment = hpa.spec.as_ref().map(|s| s.scale_target_ref.name.clone()).unwrap_or_default();
            let workload = WorkloadRef::new(namespace, deployment);
            if let Some(r) = self.restore(&workload, hpa, "prescale was released").await? {
                restored.push(r);
            }
        }
        Ok(restored)
    }

    /// Record a Kubernetes Event on the Deployment. Best effort: a failure is logged.
    async fn record_event(&self, workload: &WorkloadRef, reason: &str, message: &str) {
        let now = to_timestamp(self.clock.now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &workload.namespace);
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.prescale.", workload.name)),
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
            message: Some(message.chars().take(MAX_MESSAGE_CHARS).collect()),
            type_: Some("Normal".into()),
            source: Some(EventSource { component: Some(FIELD_MANAGER.into()), ..Default::default() }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            reporting_component: Some(FIELD_MANAGER.into()),
            reporting_instance: Some(self.identity.clone()),
            action: Some(if reason == REASON_SCALE_UP { "ScaleUp".into() } else { "ScaleDown".into() }),
            count: Some(1),
            ..Default::default()
        };
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(workload = %workload, error = %e, "cannot record a Kubernetes Event");
        }
    }

    async fn announce(&self, workload: &WorkloadRef, outcome: &ActuationOutcome, decision: &Decision) {
        let (what, from, to) = match outcome {
            ActuationOutcome::Scaled { from, to } => ("scaled the Deployment", *from, *to),
            ActuationOutcome::FloorSet { from, to } => ("set the HPA's minReplicas", *from, *to),
            _ => return,
        };
        let reason = match decision.direction {
            ScaleDirection::Down => REASON_SCALE_DOWN,
            ScaleDirection::Up => REASON_SCALE_UP,
            ScaleDirection::Hold if to < from => REASON_SCALE_DOWN,
            ScaleDirection::Hold => REASON_SCALE_UP,
        };
        let message = format!("{what} from {from} to {to}: {}", decision.explanation);
        self.record_event(workload, reason, &message).await;
    }
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
        let hpa_floor = self.find_hpa(workload).await?.map(|hpa| floor_of(&hpa));
        Ok(ReplicaState { spec, ready, hpa_floor, observed_load: None })
    }

    async fn apply(&self, workload: &WorkloadRef, decision: &Decision) -> Result<ActuationOutcome, ActuatorError> {
        // Without a hold time the raise lasts until the decision's own time plus one hour.
        let hold_until = decision.at + chrono::Duration::hours(1);
        self.apply_until(workload, decision, hold_until).await
    }

    async fn apply_until(
        &self,
        workload: &WorkloadRef,
        decision: &Decision,
        hold_until: DateTime<Utc>,
    ) -> Result<ActuationOutcome, ActuatorError> {
        let outcome = match self.mode {
            KubeMode::ForecastOnly => return Ok(ActuationOutcome::Recorded),
            KubeMode::Direct => self.apply_direct(workload, decision).await?,
            KubeMode::HpaFloor => self.apply_floor(workload, decision, hold_until).await?,
        };
        self.announce(workload, &outcome, decision).await;
        Ok(outcome)
    }

    async fn restore_expired(&self, workload: &WorkloadRef, now: DateTime<Utc>) -> Result<bool, ActuatorError> {
        let Some(hpa) = self.find_hpa(workload).await? else {
            return Ok(false);
        };
        if user_floor(&hpa).is_none() {
            return Ok(false);
        }
        let expiry = annotation_time(&hpa, ANNOTATION_FLOOR_EXPIRES);
        let why = match expiry {
            Some(t) if t > now && self.mode == KubeMode::HpaFloor => return Ok(false),
            Some(t) if t <= now => format!("the raised floor expired at {}", t.to_rfc3339()),
            None => "the raised floor has no valid expiry".to_string(),
            Some(_) => format!("the workload is in {} mode now, not hpa-floor", self.mode.as_str()),
        };
        Ok(self.restore(workload, hpa, &why).await?.is_some())
    }
}

#[cfg(test)]
#[path = "kube_tests.rs"]
mod tests;
