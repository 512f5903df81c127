//! The Kubernetes side of the pod sources: a workload's pods found through its Deployment's
//! selector, their addresses and their startup times. No kube or k8s-openapi type leaves it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use prescale_core::WorkloadRef;

use crate::CollectorError;

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

/// One pod of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    /// Pod name.
    pub name: String,
    /// `status.podIP`, when assigned.
    pub ip: Option<IpAddr>,
    /// Whether its Ready condition is true and it is not being deleted.
    pub ready: bool,
    /// Its annotations (for the metrics port).
    pub annotations: BTreeMap<String, String>,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<DateTime<Utc>>,
    /// When its Ready condition last turned true, while Ready.
    pub ready_at: Option<DateTime<Utc>>,
}

/// Lists a workload's pods through the Kubernetes API. Cheap to clone (one shared connection).
#[derive(Clone)]
pub struct KubePods {
    client: kube::Client,
}

impl std::fmt::Debug for KubePods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubePods")
    }
}

fn config_error(message: impl std::fmt::Display) -> CollectorError {
    CollectorError::InvalidConfig(format!("Kubernetes connection: {message}"))
}

/// A kube error as the collector's error, naming the request.
pub(crate) fn kube_error(what: &str, error: kube::Error) -> CollectorError {
    match error {
        kube::Error::Api(status) => {
            CollectorError::Http { url: what.to_string(), status: status.code, body: status.message.clone() }
        }
        other => CollectorError::Transport { url: what.to_string(), message: other.to_string() },
    }
}

/// The label selector of a Deployment in the query syntax (`app=web,tier in (a,b)`).
fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.clone().unwrap_or_default().join(",");
        parts.push(match req.operator.as_str() {
            "In" => format!("{} in ({values})", req.key),
            "NotIn" => format!("{} notin ({values})", req.key),
            "Exists" => req.key.clone(),
            _ => format!("!{}", req.key),
        });
    }
    parts.join(",")
}

fn time_of(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.0.as_microsecond())
}

fn endpoint(pod: Pod) -> PodEndpoint {
    let ready_condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "True");
    let deleting = pod.metadata.deletion_timestamp.is_some();
    PodEndpoint {
        name: pod.metadata.name.clone().unwrap_or_default(),
        ip: pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok()),
        ready: ready_condition.is_some() && !deleting,
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        created_at: pod.metadata.creation_timestamp.as_ref().and_then(time_of),
        ready_at: ready_condition.and_then(|c| c.last_transition_time.as_ref()).and_then(time_of),
    }
}

impl KubePods {
    /// Connect as `connection` says. The process must have installed a rustls crypto provider.
    pub async fn connect(connection: &KubeConnection) -> Result<Self, CollectorError> {
        let config = match connection {
            KubeConnection::Infer => kube::Config::infer().await.map_err(config_error)?,
            KubeConnection::InCluster => kube::Config::incluster().map_err(config_error)?,
            KubeConnection::Kubeconfig { path, context } => {
                let options = kube::config::KubeConfigOptions { context: context.clone(), ..Default::default() };
                match path {
                    Some(path) => {
                        let kubeconfig = kube::config::Kubeconfig::read_from(path)
                            .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
                        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(config_error)?
                    }
                    None => kube::Config::from_kubeconfig(&options).await.map_err(config_error)?,
                }
            }
        };
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(config_error(
                "no rustls crypto provider is installed; call rustls::crypto::ring::default_provider().install_default()",
            ));
        }
        Ok(Self { client: kube::Client::try_from(config).map_err(config_error)? })
    }

    pub(crate) fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The label selector of the workload's Deployment.
    pub(crate) async fn selector(&self, workload: &WorkloadRef) -> Result<String, CollectorError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &workload.namespace);
        let what = format!("Deployment {workload}");
        let deployment = api.get(&workload.name).await.map_err(|e| kube_error(&what, e))?;
        let selector = deployment.spec.map(|s| s.selector).unwrap_or_default();
        let text = selector_string(&selector);
        if text.is_empty() {
            return Err(CollectorError::InvalidWorkload {
                workload: workload.to_string(),
                reason: "the Deployment has an empty selector".into(),
            });
        }
        Ok(text)
    }

    /// Every pod of the workload (by its Deployment's selector), Ready or not, by name.
    pub async fn pods(&self, workload: &WorkloadRef) -> Result<Vec<PodEndpoint>, CollectorError> {
        let selector = self.selector(workload).await?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &workload.namespace);
        let what = format!("pods of {workload}");
        let list = api.list(&ListParams::default().labels(&selector)).await.map_err(|e| kube_error(&what, e))?;
        let mut pods: Vec<PodEndpoint> = list.items.into_iter().map(endpoint).collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    /// Time from creation to Ready of each Ready pod of the workload (on the cluster's clock):
    /// what `startup: auto` learns from.
    pub async fn startup_times(&self, workload: &WorkloadRef) -> Result<Vec<Duration>, CollectorError> {
        Ok(self
            .pods(workload)
            .await?
            .into_iter()
            .filter(|p| p.ready)
            .filter_map(|p| (p.ready_at? - p.created_at?).to_std().ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_render_in_query_syntax() {
        let selector = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement { key: "canary".into(), operator: "DoesNotExist".into(), values: None },
            ]),
        };
        assert_eq!(selector_string(&selector), "app=web,tier in (a,b),!canary");
    }
}
