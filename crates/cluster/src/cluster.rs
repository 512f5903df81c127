//! [`Cluster`]: the API server, controllers, pods and Services started together.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prescale_core::ReplicaState;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apiserver::{self, ApiState};
use crate::autoscaler::HpaController;
use crate::config::{
    ClusterConfig, QUEUE_CAPACITY_ANNOTATION, SERVICE_TIME_ANNOTATION, STARTUP_DELAY_ANNOTATION, WORKERS_ANNOTATION,
};
use crate::deployment::DeploymentController;
use crate::error::ClusterError;
use crate::kubelet::{Kubelet, NODE_NAME, PodRegistry};
use crate::pod::PodConfig;
use crate::resources;
use crate::selector::LabelSelector;
use crate::service::Proxies;
use crate::store::Store;

/// A Deployment to create through [`Cluster::create_deployment`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentSpec {
    /// Namespace (created when missing).
    pub namespace: String,
    /// Deployment name; also the `app` label and the container name.
    pub name: String,
    /// `spec.replicas`.
    pub replicas: u32,
    /// Container image shown in the objects (nothing is pulled).
    pub image: String,
    /// Extra pod labels besides `app: <name>`.
    pub labels: BTreeMap<String, String>,
    /// Startup delay of these pods, instead of the cluster's.
    pub startup_delay: Option<Duration>,
    /// Capacity model of these pods, instead of the cluster's.
    pub pod: Option<PodConfig>,
}

impl DeploymentSpec {
    /// A Deployment of `replicas` pods of the sample shop frontend.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, replicas: u32) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            replicas,
            image: "prescale/shop-frontend:1.0".to_string(),
            labels: BTreeMap::new(),
            startup_delay: None,
            pod: None,
        }
    }
}

/// An HPA to create through [`Cluster::create_hpa`]: CPU utilization target on a Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSpec {
    /// Namespace of the HPA and its Deployment.
    pub namespace: String,
    /// HPA name.
    pub name: String,
    /// Target Deployment.
    pub deployment: String,
    /// `spec.minReplicas`.
    pub min_replicas: u32,
    /// `spec.maxReplicas`.
    pub max_replicas: u32,
    /// Target mean CPU utilization in percent of the request (70 = 70%).
    pub target_cpu_percent: u32,
}

/// What one pod is doing, for tests and the harness.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// Whether the Service sends it traffic (Ready and not terminating).
    pub ready: bool,
    /// Deleted and draining.
    pub terminating: bool,
    /// Loopback port of its HTTP server (`http://127.0.0.1:<port>/metrics`).
    pub port: u16,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<DateTime<Utc>>,
    /// `lastTransitionTime` of its Ready condition when Ready.
    pub ready_at: Option<DateTime<Utc>>,
    /// CPU utilization (busy workers / workers) over the CPU window.
    pub cpu_utilization: f64,
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// Requests queued or in service.
    pub in_flight: u32,
    /// Requests answered 2xx.
    pub served: u64,
    /// Requests answered 503 because the queue was full.
    pub rejected: u64,
}

/// A running embedded cluster. Stop it with [`Cluster::shutdown`].
#[derive(Debug)]
pub struct Cluster {
    config: Arc<ClusterConfig>,
    store: Arc<Store>,
    registry: Arc<PodRegistry>,
    proxies: Arc<Proxies>,
    api: Arc<ApiState>,
    api_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

impl Cluster {
    /// Start the API server on loopback, the controllers, and the node with its `default`
    /// and `kube-system` namespaces. Must run inside a tokio runtime.
    pub async fn start(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        config.validate().map_err(ClusterError::Config)?;
        let config = Arc::new(config);
        let store = Arc::new(Store::new(config.clock.clone(), config.seed));
        let registry = Arc::new(PodRegistry::default());
        bootstrap(&store)?;
        let addr = format!("127.0.0.1:{}", config.api_port);
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|source| ClusterError::Bind {
            what: "API server",
            addr: addr.clone(),
            source,
        })?;
        let api_addr =
            listener.local_addr().map_err(|source| ClusterError::Bind { what: "API server", addr, source })?;
        let (shutdown, stopped) = watch::channel(false);
        let api = Arc::new(ApiState {
            store: store.clone(),
            registry: registry.clone(),
            server_address: api_addr.to_string(),
            metrics_window_seconds: config.pod.cpu_window.as_secs().max(1),
            unknown: Mutex::new(Vec::new()),
            stopping: stopped.clone(),
        });
        let proxies = Arc::new(Proxies::new(store.clone(), registry.clone(), config.load_balancing));
        let mut tasks = Vec::new();
        let app = apiserver::router(api.clone());
        let mut api_stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let signal = async move {
                let _ = api_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                tracing::warn!(error = %e, "API server stopped with an error");
            }
        }));
        let kubelet = Kubelet::new(store.clone(), registry.clone(), config.clone());
        tasks.push(tokio::spawn(kubelet.run(stopped.clone())));
        let deployments = DeploymentController::new(store.clone(), config.termination_grace);
        tasks.push(tokio::spawn(deployments.run(stopped.clone())));
        tasks.push(tokio::spawn(proxies.clone().run(stopped.clone())));
        let hpa = HpaController::new(store.clone(), registry.clone(), config.hpa_sync_period);
        tasks.push(tokio::spawn(hpa.run(stopped)));
        Ok(Cluster { config, store, registry, proxies, api, api_addr, shutdown, tasks: Mutex::new(tasks) })
    }

    /// `http://127.0.0.1:<port>`, the API server's base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The configuration the cluster runs with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// A kubeconfig (YAML) with one context, `prescale`, pointing at the API server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prescale\n  cluster:\n    server: {}\ncontexts:\n- name: prescale\n  context:\n    cluster: prescale\n    user: prescale\n    namespace: default\ncurrent-context: prescale\nusers:\n- name: prescale\n  user: {{}}\npreferences: {{}}\n",
            self.api_url()
        )
    }

    /// Write [`Cluster::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), ClusterError> {
        std::fs::write(path, self.kubeconfig())
            .map_err(|source| ClusterError::Kubeconfig { path: path.to_path_buf(), source })
    }

    fn ensure_namespace(&self, namespace: &str) -> Result<(), ClusterError> {
        if self.store.get(resources::namespaces(), "", namespace).is_err() {
            let ns = json!({"metadata": {"name": namespace}, "status": {"phase": "Active"}});
            match self.store.create_with_status(resources::namespaces(), "", ns) {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Create a Deployment of shop-frontend pods (and its namespace when missing).
    pub async fn create_deployment(&self, spec: &DeploymentSpec) -> Result<(), ClusterError> {
        self.ensure_namespace(&spec.namespace)?;
        let mut labels: serde_json::Map<String, Value> =
            spec.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        labels.insert("app".to_string(), json!(spec.name));
        let mut annotations = serde_json::Map::new();
        if let Some(d) = spec.startup_delay {
            annotations.insert(STARTUP_DELAY_ANNOTATION.to_string(), json!(d.as_secs_f64().to_string()));
        }
        let pod = spec.pod.clone().unwrap_or_else(|| self.config.pod.clone());
        if spec.pod.is_some() {
            pod.validate().map_err(ClusterError::Config)?;
            annotations.insert(WORKERS_ANNOTATION.to_string(), json!(pod.workers.to_string()));
            annotations.insert(SERVICE_TIME_ANNOTATION.to_string(), json!(pod.service_time.as_millis().to_string()));
            annotations.insert(QUEUE_CAPACITY_ANNOTATION.to_string(), json!(pod.queue_capacity.to_string()));
        }
        let deployment = json!({
            "metadata": {"name": spec.name, "labels": {"app": spec.name}},
            "spec": {
                "replicas": spec.replicas,
                "selector": {"matchLabels": {"app": spec.name}},
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {"containers": [{
                        "name": spec.name,
                        "image": spec.image,
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "resources": {
                            "requests": {"cpu": pod.workers.to_string(), "memory": "256Mi"},
                            "limits": {"cpu": pod.workers.to_string(), "memory": "512Mi"},
                        },
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    }]},
                },
            },
        });
        self.store.create(resources::deployments(), &spec.namespace, deployment)?;
        Ok(())
    }

    /// Create an `autoscaling/v2` HPA with a CPU utilization target.
    pub async fn create_hpa(&self, spec: &AutoscalerSpec) -> Result<(), ClusterError> {
        let hpa = json!({
            "metadata": {"name": spec.name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.deployment},
                "minReplicas": spec.min_replicas,
                "maxReplicas": spec.max_replicas,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": spec.target_cpu_percent}}}],
            },
        });
        self.store.create(resources::hpas(), &spec.namespace, hpa)?;
        Ok(())
    }

    /// Set a Deployment's `spec.replicas`.
    pub async fn scale_deployment(&self, namespace: &str, name: &str, replicas: u32) -> Result<(), ClusterError> {
        self.store.mutate(resources::deployments(), namespace, name, |o| {
            o["spec"]["replicas"] = json!(replicas);
            Ok(())
        })?;
        Ok(())
    }

    /// Replicas of a Deployment: `spec`, `ready`, and the floor of an HPA targeting it.
    pub fn deployment_state(&self, namespace: &str, name: &str) -> Result<ReplicaState, ClusterError> {
        let d = self.store.get(resources::deployments(), namespace, name)?;
        let count = |p: &str| d.pointer(p).and_then(Value::as_u64).unwrap_or(0) as u32;
        let hpa_floor = self
            .store
            .list_all(resources::hpas(), Some(namespace))
            .iter()
            .find(|h| h.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) == Some(name))
            .map(|h| h.pointer("/spec/minReplicas").and_then(Value::as_u64).unwrap_or(1) as u32);
        Ok(ReplicaState {
            spec: d.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1) as u32,
            ready: count("/status/readyReplicas"),
            hpa_floor,
            observed_load: None,
        })
    }

    /// The pods of a Deployment (by its selector), running or draining, by name.
    pub fn pods(&self, namespace: &str, deployment: &str) -> Result<Vec<PodInfo>, ClusterError> {
        let d = self.store.get(resources::deployments(), namespace, deployment)?;
        let selector = d
            .pointer("/spec/selector")
            .map(LabelSelector::from_object)
            .transpose()
            .map_err(ClusterError::Config)?
            .unwrap_or_default();
        let pods = self.store.list_all(resources::pods(), Some(namespace));
        let mut out: Vec<PodInfo> = pods
            .iter()
            .filter(|p| selector.matches(p))
            .filter_map(|p| {
                let uid = p.pointer("/metadata/uid").and_then(Value::as_str)?;
                let runtime = self.registry.get(uid)?;
                let ready_at = p
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready" && c["status"] == "True"))
                    .and_then(|c| parse_time(c.get("lastTransitionTime")));
                let model = &runtime.server.model;
                Some(PodInfo {
                    name: runtime.name.clone(),
                    ready: runtime.serving(),
                    terminating: runtime.terminating.load(std::sync::atomic::Ordering::SeqCst),
                    port: runtime.server.addr.port(),
                    created_at: parse_time(p.pointer("/metadata/creationTimestamp")),
                    ready_at,
                    cpu_utilization: model.cpu_utilization(),
                    memory_bytes: model.memory_bytes(),
                    in_flight: model.in_flight(),
                    served: model.served(),
                    rejected: model.rejected(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The URL of the Service in front of Deployment `namespace/name`, creating the
    /// Service (same name, selecting the Deployment's pods) when missing.
    pub async fn service_url(&self, namespace: &str, name: &str) -> Result<String, ClusterError> {
        if self.store.get(resources::services(), namespace, name).is_err() {
            let d = self.store.get(resources::deployments(), namespace, name)?;
            let selector = d.pointer("/spec/selector/matchLabels").cloned().unwrap_or_else(|| json!({}));
            let svc = json!({
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"type": "ClusterIP", "selector": selector,
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            });
            match self.store.create(resources::services(), namespace, svc) {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e.into()),
            }
        }
        for _ in 0..200 {
            if let Some(addr) = self.proxies.address(namespace, name) {
                return Ok(format!("http://{addr}"));
            }
            self.proxies.reconcile().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(ClusterError::Timeout(format!("service {namespace}/{name} did not get a listener")))
    }

    /// Requests the API server answered with "no route" (method and URL), to see what a
    /// client asked for that is not served.
    pub fn unserved_requests(&self) -> Vec<String> {
        self.api.unknown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stop the controllers, Services, pods and the API server, and wait for them.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            // Open watches keep the API server's graceful shutdown waiting; do not wait on them.
            match tokio::time::timeout(Duration::from_secs(2), task).await {
                Ok(_) => {}
                Err(_) => tracing::debug!("a cluster task did not stop within 2 s; leaving it"),
            }
        }
        self.registry.abort_all();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
        self.registry.abort_all();
    }
}

/// Namespaces and the node every cluster starts with.
fn bootstrap(store: &Store) -> Result<(), ClusterError> {
    for ns in ["default", "kube-system"] {
        store.create_with_status(
            resources::namespaces(),
            "",
            json!({"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        )?;
    }
    let now = store.now_string();
    store.create_with_status(
        resources::nodes(),
        "",
        json!({
            "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
                "capacity": {"cpu": "256", "memory": "1Ti", "pods": "1000"},
                "allocatable": {"cpu": "256", "memory": "1Ti", "pods": "1000"},
                "nodeInfo": {"kubeletVersion": "v1.35.0-prescale", "architecture": "amd64", "operatingSystem": "linux",
                    "bootID": "", "containerRuntimeVersion": "prescale://1", "kernelVersion": "", "kubeProxyVersion": "",
                    "machineID": "", "osImage": "prescale", "systemUUID": ""},
            },
        }),
    )?;
    Ok(())
}
