//! Running the cluster on its own: the sample `shop-frontend` Deployment, its Service
//! and a kubeconfig, until a shutdown signal.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prescale_core::{Clock, ScaledClock, SharedClock, SystemClock};

use crate::cluster::{Cluster, DeploymentSpec};
use crate::config::ClusterConfig;
use crate::error::ClusterError;

/// Options of [`run`] (the `prescale-cluster` binary's flags).
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// API server port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig.
    pub kubeconfig: PathBuf,
    /// Cluster-clock seconds per real second (1 = real time).
    pub time_scale: f64,
    /// Pod startup delay in cluster-clock time.
    pub startup_delay: Duration,
    /// Replicas of the sample Deployment.
    pub replicas: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            port: 6443,
            kubeconfig: PathBuf::from("prescale-cluster.kubeconfig"),
            time_scale: 1.0,
            startup_delay: Duration::from_secs(45),
            replicas: 2,
        }
    }
}

/// Name of the sample Deployment (namespace `default`).
pub const SAMPLE_DEPLOYMENT: &str = "shop-frontend";

/// Start a cluster with the sample `shop-frontend` Deployment and its Service, write
/// the kubeconfig, report the addresses through `report`, and run until `shutdown`
/// resolves.
pub async fn run(
    options: RunOptions,
    report: impl Fn(&str),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    if !(options.time_scale.is_finite() && options.time_scale > 0.0) {
        return Err(ClusterError::Config(format!("time scale must be a positive number, got {}", options.time_scale)));
    }
    let clock: SharedClock = if (options.time_scale - 1.0).abs() < f64::EPSILON {
        Arc::new(SystemClock)
    } else {
        Arc::new(ScaledClock::new(SystemClock.now(), options.time_scale))
    };
    let mut config = ClusterConfig::new(clock);
    config.api_port = options.port;
    config.startup_delay = options.startup_delay;
    config.startup_jitter = options.startup_delay / 9;
    let cluster = Cluster::start(config).await?;
    cluster.write_kubeconfig(&options.kubeconfig)?;
    cluster.create_deployment(&DeploymentSpec::new("default", SAMPLE_DEPLOYMENT, options.replicas)).await?;
    let service = cluster.service_url("default", SAMPLE_DEPLOYMENT).await?;
    report(&format!("API server: {}", cluster.api_url()));
    report(&format!("kubeconfig: {}", options.kubeconfig.display()));
    report(&format!("service default/{SAMPLE_DEPLOYMENT}: {service}"));
    report(&format!("try: kubectl --kubeconfig {} get deployments,pods", options.kubeconfig.display()));
    shutdown.await;
    cluster.shutdown().await;
    Ok(())
}
