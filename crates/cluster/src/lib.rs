//! prescale-cluster: an embedded Kubernetes-compatible cluster with real HTTP pods.
//!
//! For tests, demos and the harness' seed scenario; no stage crate depends on it.
//!
//! - An API server on loopback (plain HTTP) speaking enough Kubernetes for kube-rs and
//!   kubectl: discovery, Deployments (with `scale` and `status`), Pods, Services, Events
//!   (core and `events.k8s.io`), ConfigMaps, Leases, `autoscaling/v2` HPAs, and
//!   `metrics.k8s.io` PodMetrics; list/watch from a resourceVersion, merge, strategic,
//!   JSON and apply patches, 404/409/410/422 `Status` errors, server-side Tables.
//! - A deployment controller, a kubelet that runs each pod as a real HTTP server that
//!   turns Ready after a startup delay and drains when deleted, Services that balance
//!   over Ready pods, and an HPA controller running the provisioner's HPA algorithm.
//! - Pods serve a small shop (`/`, `/products/{id}`, `/cart`) with a bounded capacity
//!   ([`PodConfig`]) and `/metrics` in Prometheus text.
//!
//! Everything waits on a [`prescale_core::Clock`]: with a `ScaledClock` startup delays
//! and controller periods shrink; request service times do not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), prescale_cluster::ClusterError> {
//! use prescale_cluster::{Cluster, ClusterConfig, DeploymentSpec};
//! let cluster = Cluster::start(ClusterConfig::default()).await?;
//! cluster.create_deployment(&DeploymentSpec::new("default", "shop-frontend", 2)).await?;
//! let url = cluster.service_url("default", "shop-frontend").await?;
//! println!("kube API at {}, shop at {url}", cluster.api_url());
//! cluster.shutdown().await;
//! # Ok(()) }
//! ```

mod apiserver;
mod autoscaler;
mod cluster;
mod config;
mod deployment;
mod error;
mod events;
mod kubelet;
mod patch;
mod pod;
mod resources;
mod run;
mod selector;
mod service;
mod status;
mod store;
mod table;

pub use cluster::{AutoscalerSpec, Cluster, DeploymentSpec, PodInfo};
pub use config::{
    ClusterConfig, LoadBalancing, METRICS_PORT_ANNOTATION, PROMETHEUS_PORT_ANNOTATION, PROMETHEUS_SCRAPE_ANNOTATION,
    QUEUE_CAPACITY_ANNOTATION, SERVICE_PORT_ANNOTATION, SERVICE_TIME_ANNOTATION, STARTUP_DELAY_ANNOTATION,
    WORKERS_ANNOTATION,
};
pub use error::ClusterError;
pub use pod::PodConfig;
pub use run::{RunOptions, SAMPLE_DEPLOYMENT, run};
