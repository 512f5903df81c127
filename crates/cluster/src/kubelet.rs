//! The node agent: runs a real HTTP server for every pod object, marks it Ready after
//! its startup delay, and drains it when the pod is deleted.
//!
//! A pod starts when the kubelet sees it (its server binds a loopback port at once,
//! published as [`METRICS_PORT_ANNOTATION`]) and turns Ready after the startup delay
//! on the cluster clock. A deleted pod leaves the Service at once, finishes the
//! requests it has (up to its grace period), then its object goes away.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::config::{
    ClusterConfig, METRICS_PORT_ANNOTATION, PROMETHEUS_PORT_ANNOTATION, PROMETHEUS_SCRAPE_ANNOTATION,
    QUEUE_CAPACITY_ANNOTATION, SERVICE_TIME_ANNOTATION, STARTUP_DELAY_ANNOTATION, WORKERS_ANNOTATION,
};
use crate::events::EventRecorder;
use crate::pod::{PodConfig, PodServer};
use crate::resources;
use crate::status::ApiError;
use crate::store::{Store, format_time};

/// Name of the one node.
pub(crate) const NODE_NAME: &str = "prescale-node";

/// A running pod.
#[derive(Debug)]
pub(crate) struct PodRuntime {
    /// Namespace of the pod object.
    pub namespace: String,
    /// Name of the pod object.
    pub name: String,
    /// uid of the pod object.
    pub uid: String,
    /// Labels at start (Services select on them).
    pub labels: Map<String, Value>,
    /// The HTTP server.
    pub server: PodServer,
    /// Passed its startup delay.
    pub ready: AtomicBool,
    /// Deleted: receives no new traffic.
    pub terminating: AtomicBool,
}

impl PodRuntime {
    /// Whether a Service may send it requests.
    pub fn serving(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.terminating.load(Ordering::SeqCst)
    }
}

/// Running pods by uid.
#[derive(Debug, Default)]
pub(crate) struct PodRegistry {
    pods: RwLock<HashMap<String, Arc<PodRuntime>>>,
}

impl PodRegistry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<PodRuntime>>> {
        self.pods.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<PodRuntime>>> {
        self.pods.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The pod with `uid`.
    pub fn get(&self, uid: &str) -> Option<Arc<PodRuntime>> {
        self.read().get(uid).cloned()
    }

    /// Every running pod.
    pub fn all(&self) -> Vec<Arc<PodRuntime>> {
        self.read().values().cloned().collect()
    }

    /// Ready, non-terminating pods of `namespace` whose labels include `selector`.
    pub fn endpoints(&self, namespace: &str, selector: &Map<String, Value>) -> Vec<Arc<PodRuntime>> {
        let mut out: Vec<Arc<PodRuntime>> = self
            .read()
            .values()
            .filter(|p| p.namespace == namespace && p.serving())
            .filter(|p| !selector.is_empty() && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn insert(&self, runtime: Arc<PodRuntime>) {
        self.write().insert(runtime.uid.clone(), runtime);
    }

    fn remove(&self, uid: &str) -> Option<Arc<PodRuntime>> {
        self.write().remove(uid)
    }

    /// Stop every pod at once (cluster shutdown).
    pub fn abort_all(&self) {
        for p in self.write().drain().map(|(_, p)| p) {
            p.terminating.store(true, Ordering::SeqCst);
            p.server.abort();
        }
    }
}

/// Ask for a pod's deletion: graceful (the kubelet drains, then removes it) unless
/// `grace_seconds` is 0.
pub(crate) fn delete_pod(
    store: &Store,
    namespace: &str,
    name: &str,
    grace_seconds: Option<i64>,
    precondition_rv: Option<&str>,
    precondition_uid: Option<&str>,
) -> Result<Value, ApiError> {
    let pods = resources::pods();
    let current = store.get(pods, namespace, name)?;
    let grace = grace_seconds
        .or_else(|| current.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
        .unwrap_or(30);
    if grace <= 0 {
        return store.delete(pods, namespace, name, precondition_rv, precondition_uid);
    }
    if current.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(current);
    }
    let now = store.now_string();
    store.mutate(pods, namespace, name, |o| {
        if precondition_rv.is_some_and(|rv| o.pointer("/metadata/resourceVersion").and_then(Value::as_str) != Some(rv))
            || precondition_uid.is_some_and(|uid| o.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid))
        {
            return Err(ApiError::conflict(pods, name));
        }
        o["metadata"]["deletionTimestamp"] = json!(now);
        o["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        Ok(())
    })
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// The pod's capacity model: the cluster's, with annotation overrides.
fn pod_config(base: &PodConfig, pod: &Value) -> Result<PodConfig, String> {
    let mut config = base.clone();
    let parse = |key: &str| -> Result<Option<u64>, String> {
        annotation(pod, key)
            .map(|v| v.trim().parse::<u64>().map_err(|_| format!("annotation {key}={v:?} is not a whole number")))
            .transpose()
    };
    if let Some(w) = parse(WORKERS_ANNOTATION)? {
        config.workers = u32::try_from(w).map_err(|_| format!("annotation {WORKERS_ANNOTATION}={w} is too large"))?;
    }
    if let Some(ms) = parse(SERVICE_TIME_ANNOTATION)? {
        config.service_time = Duration::from_millis(ms);
    }
    if let Some(q) = parse(QUEUE_CAPACITY_ANNOTATION)? {
        config.queue_capacity =
            u32::try_from(q).map_err(|_| format!("annotation {QUEUE_CAPACITY_ANNOTATION}={q} is too large"))?;
    }
    config.validate()?;
    Ok(config)
}

fn startup_delay(config: &ClusterConfig, pod: &Value, unit_random: f64) -> Result<Duration, String> {
    let base = match annotation(pod, STARTUP_DELAY_ANNOTATION) {
        Some(v) => {
            let secs: f64 =
                v.trim().parse().ok().filter(|s: &f64| s.is_finite() && *s >= 0.0).ok_or_else(|| {
                    format!("annotation {STARTUP_DELAY_ANNOTATION}={v:?} is not a non-negative number")
                })?;
            Duration::from_secs_f64(secs)
        }
        None => config.startup_delay,
    };
    let jitter = config.startup_jitter.as_secs_f64() * (2.0 * unit_random - 1.0);
    Ok(Duration::from_secs_f64((base.as_secs_f64() + jitter).max(0.0)))
}

/// Pod status as the kubelet reports it.
fn pod_status(pod: &Value, ready: bool, started_at: &str, transition: &str) -> Value {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let created = pod.pointer("/metadata/creationTimestamp").cloned().unwrap_or_else(|| json!(started_at));
    let flag = if ready { "True" } else { "False" };
    let names: Vec<String> = containers.iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect();
    let mut ready_condition =
        json!({"type": "Ready", "status": flag, "lastProbeTime": null, "lastTransitionTime": transition});
    let mut containers_ready =
        json!({"type": "ContainersReady", "status": flag, "lastProbeTime": null, "lastTransitionTime": transition});
    if !ready {
        for c in [&mut ready_condition, &mut containers_ready] {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!("containers with unready status: [{}]", names.join(" ")));
        }
    }
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"],
                "image": c.get("image").cloned().unwrap_or_else(|| json!("")),
                "imageID": "",
                "containerID": format!("prescale://{}", c["name"].as_str().unwrap_or("")),
                "ready": ready,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": started_at}},
            })
        })
        .collect();
    json!({
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": started_at,
        "qosClass": "Burstable",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": created},
            {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started_at},
            containers_ready,
            ready_condition,
        ],
        "containerStatuses": statuses,
    })
}

/// The node agent.
#[derive(Debug, Clone)]
pub(crate) struct Kubelet {
    store: Arc<Store>,
    registry: Arc<PodRegistry>,
    config: Arc<ClusterConfig>,
    events: EventRecorder,
    draining: Arc<std::sync::Mutex<HashSet<String>>>,
    failed: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl Kubelet {
    /// A kubelet for the pods in `store`.
    pub fn new(store: Arc<Store>, registry: Arc<PodRegistry>, config: Arc<ClusterConfig>) -> Self {
        let events = EventRecorder::new(store.clone(), "kubelet");
        Self { store, registry, config, events, draining: Arc::default(), failed: Arc::default() }
    }

    /// Reconcile on every store change until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.store.subscribe();
        loop {
            self.reconcile(&shutdown).await;
            tokio::select! {
                r = changes.changed() => if r.is_err() { break },
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        self.registry.abort_all();
    }

    async fn reconcile(&self, shutdown: &watch::Receiver<bool>) {
        let pods = self.store.list_all(resources::pods(), None);
        let mut seen = HashSet::new();
        for pod in &pods {
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
            let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
            let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            seen.insert(uid.clone());
            let deleting = pod.pointer("/metadata/deletionTimestamp").is_some();
            match self.registry.get(&uid) {
                None if deleting => {
                    let _ = self.store.delete(resources::pods(), &namespace, &name, None, Some(&uid));
                }
                None => {
                    if self.failed.lock().unwrap_or_else(|p| p.into_inner()).contains(&uid) {
                        continue;
                    }
                    if let Err(e) = self.start(pod, &uid, &namespace, &name, shutdown.clone()).await {
                        tracing::warn!(pod = %name, error = %e, "pod failed to start");
                        self.failed.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.clone());
                        self.events.warning(pod, "FailedStart", &e);
                        let _ = self.store.mutate(resources::pods(), &namespace, &name, |o| {
                            o["status"] = json!({"phase": "Failed", "reason": "InvalidConfiguration", "message": e});
                            Ok(())
                        });
                    }
                }
                Some(runtime) if deleting => {
                    let first = self.draining.lock().unwrap_or_else(|p| p.into_inner()).insert(uid.clone());
                    if first {
                        let grace =
                            pod.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(30);
                        self.spawn_drain(runtime, grace);
                    }
                }
                Some(_) => {}
            }
        }
        for runtime in self.registry.all() {
            if !seen.contains(&runtime.uid) {
                runtime.terminating.store(true, Ordering::SeqCst);
                runtime.server.abort();
                self.registry.remove(&runtime.uid);
            }
        }
    }

    async fn start(
        &self,
        pod: &Value,
        uid: &str,
        namespace: &str,
        name: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let config = pod_config(&self.config.pod, pod)?;
        let delay = startup_delay(&self.config, pod, self.store.random_unit())?;
        let clock = self.store.clock().clone();
        let cpu_window_wall = config.cpu_window.div_f64(clock.scale().max(1e-9));
        let server = PodServer::start(config, cpu_window_wall)
            .await
            .map_err(|e| format!("could not bind a loopback port for the pod: {e}"))?;
        let port = server.addr.port();
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
        let runtime = Arc::new(PodRuntime {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            labels,
            server,
            ready: AtomicBool::new(false),
            terminating: AtomicBool::new(false),
        });
        self.registry.insert(runtime.clone());
        let started_at = format_time(clock.now());
        let result = self.store.mutate(resources::pods(), namespace, name, |o| {
            o["metadata"]["annotations"][METRICS_PORT_ANNOTATION] = json!(port.to_string());
            // The conventional scrape annotations too, so Prometheus-style scrapers find the pod.
            o["metadata"]["annotations"][PROMETHEUS_PORT_ANNOTATION] = json!(port.to_string());
            o["metadata"]["annotations"][PROMETHEUS_SCRAPE_ANNOTATION] = json!("true");
            o["spec"]["nodeName"] = json!(NODE_NAME);
            o["status"] = pod_status(o, false, &started_at, &started_at);
            Ok(())
        });
        if let Ok(updated) = &result {
            self.events.normal(updated, "Started", &format!("Started container; serving on 127.0.0.1:{port}"));
        }
        let store = self.store.clone();
        let events = self.events.clone();
        let (namespace, name) = (namespace.to_string(), name.to_string());
        tokio::spawn(async move {
            let chrono_delay = chrono::Duration::from_std(delay).unwrap_or_default();
            tokio::select! {
                _ = clock.sleep(chrono_delay) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if runtime.terminating.load(Ordering::SeqCst) {
                return;
            }
            let now = format_time(clock.now());
            let updated = store.mutate(resources::pods(), &namespace, &name, |o| {
                if o.pointer("/metadata/uid").and_then(Value::as_str) != Some(runtime.uid.as_str()) {
                    return Err(ApiError::not_found(resources::pods(), &name));
                }
                o["status"] = pod_status(o, true, &started_at, &now);
                Ok(())
            });
            // Traffic only after the object says Ready, so the two never disagree for long.
            runtime.ready.store(true, Ordering::SeqCst);
            if let Ok(pod) = updated {
                events.normal(&pod, "Ready", &format!("Pod became Ready after {:.1}s", delay.as_secs_f64()));
            }
        });
        result.map(|_| ()).map_err(|e| e.message)
    }

    fn spawn_drain(&self, runtime: Arc<PodRuntime>, grace_seconds: i64) {
        runtime.terminating.store(true, Ordering::SeqCst);
        let store = self.store.clone();
        let registry = self.registry.clone();
        let draining = self.draining.clone();
        let clock = self.store.clock().clone();
        tokio::spawn(async move {
            let grace = chrono::Duration::seconds(grace_seconds.max(0));
            tokio::select! {
                _ = runtime.server.drain() => {}
                _ = clock.sleep(grace) => runtime.server.abort(),
            }
            registry.remove(&runtime.uid);
            let _ = store.delete(resources::pods(), &runtime.namespace, &runtime.name, None, Some(&runtime.uid));
            draining.lock().unwrap_or_else(|p| p.into_inner()).remove(&runtime.uid);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_override_the_capacity_model() {
        let pod = json!({"metadata": {"annotations": {WORKERS_ANNOTATION: "4", SERVICE_TIME_ANNOTATION: "50"}}});
        let c = pod_config(&PodConfig::default(), &pod).unwrap();
        assert_eq!((c.workers, c.service_time), (4, Duration::from_millis(50)));
        let bad = json!({"metadata": {"annotations": {WORKERS_ANNOTATION: "many"}}});
        assert!(pod_config(&PodConfig::default(), &bad).unwrap_err().contains(WORKERS_ANNOTATION));
    }

    #[test]
    fn startup_delay_is_jittered_within_bounds() {
        let config = ClusterConfig::default();
        let pod = json!({"metadata": {}});
        assert_eq!(startup_delay(&config, &pod, 0.0).unwrap(), Duration::from_secs(40));
        assert_eq!(startup_delay(&config, &pod, 0.5).unwrap(), Duration::from_secs(45));
        let quick = json!({"metadata": {"annotations": {STARTUP_DELAY_ANNOTATION: "2"}}});
        assert_eq!(startup_delay(&config, &quick, 0.0).unwrap(), Duration::ZERO);
    }

    #[test]
    fn ready_status_has_conditions_and_pod_ip() {
        let pod = json!({"metadata": {"creationTimestamp": "2026-03-01T12:00:00Z"}, "spec": {"containers": [{"name": "web", "image": "shop"}]}});
        let s = pod_status(&pod, true, "2026-03-01T12:00:01Z", "2026-03-01T12:00:46Z");
        assert_eq!(s["podIP"], "127.0.0.1");
        let ready = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["lastTransitionTime"], "2026-03-01T12:00:46Z");
        let typed: k8s_openapi::api::core::v1::PodStatus = serde_json::from_value(s).unwrap();
        assert!(typed.container_statuses.unwrap()[0].ready);
    }
}
