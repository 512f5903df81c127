//! The daemon's own Kubernetes access through kube-rs: the connection (for the Lease and the
//! ConfigMap event store) and the ConfigMap event store. The actuator lives in
//! `prescale_provisioner::kube`, the pod sources in `prescale_collector`; each crate builds
//! its own client from the same [`KubernetesConnection`], so no kube type crosses a crate
//! boundary. No kube or k8s-openapi type leaves this module either.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use prescale_core::{ScheduledEvent, WorkloadRef};

use crate::DaemonError;
use crate::config::KubernetesConnection;
use crate::store::EventStore;

/// A connected Kubernetes client (opaque outside this module).
#[derive(Clone)]
pub struct KubeClient(kube::Client);

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeClient")
    }
}

impl KubeClient {
    pub(crate) fn inner(&self) -> &kube::Client {
        &self.0
    }
}

/// The connection as the provisioner's actuator takes it.
pub fn provisioner_connection(connection: &KubernetesConnection) -> prescale_provisioner::kube::KubeConnection {
    use prescale_provisioner::kube::KubeConnection as P;
    match connection {
        KubernetesConnection::Auto => P::Infer,
        KubernetesConnection::InCluster => P::InCluster,
        KubernetesConnection::Kubeconfig { path, context } => {
            P::Kubeconfig { path: path.clone(), context: context.clone() }
        }
    }
}

/// The connection as the collector's pod sources take it.
pub fn collector_connection(connection: &KubernetesConnection) -> prescale_collector::KubeConnection {
    use prescale_collector::KubeConnection as C;
    match connection {
        KubernetesConnection::Auto => C::Infer,
        KubernetesConnection::InCluster => C::InCluster,
        KubernetesConnection::Kubeconfig { path, context } => {
            C::Kubeconfig { path: path.clone(), context: context.clone() }
        }
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
            for event in &events {
                if let Err(problems) = event.validate() {
                    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    return Err(self.error(format!("key {key}: event {:?}: {}", event.id, list.join("; "))));
                }
            }
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
