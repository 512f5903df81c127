//! Running the daemon: [`run`] builds every part from a validated configuration (Kubernetes
//! connections, metric sources, actuators, the event store, the Lease), serves the Prediction
//! API and runs the loop until shutdown; [`release`] restores every HPA floor prescale raised.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use prescale_collector::{
    Aggregate, CsvHistory, KubePods, MetricSource, MetricsApiSource, PodScrapeConfig, PodScrapeSource,
    PrometheusConfig, PrometheusSource, QueryTemplates,
};
use prescale_core::{SharedClock, TimeSeries, WorkloadRef};
use prescale_provisioner::Actuator;
use prescale_provisioner::kube::{KubeActuator, KubeMode, RestoredFloor};
use tokio::sync::watch;

use crate::DaemonError;
use crate::api::{self, BearerToken};
use crate::config::{DaemonConfig, MetricsSource, Mode, Setting, StateStore, WorkloadConfig};
use crate::engine::{Engine, EngineSettings, ResourceObserver, StartupObserver, WorkloadParts};
use crate::kube::{self as daemon_kube, ConfigMapEventStore, KubeClient};
use crate::leader::{self, LeaderElector, Leadership, LeaseSettings};
use crate::metrics::Metrics;
use crate::state::{DaemonState, PodResourceUse};
use crate::store::{EventStore, FileEventStore};

/// How long the API server may take to finish its requests after the loop stopped.
const API_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

fn stage(stage: &'static str, message: impl std::fmt::Display) -> DaemonError {
    DaemonError::Stage { stage, message: message.to_string() }
}

/// Run the daemon until `shutdown` resolves: serve the API on the configured address, connect
/// to Kubernetes as configured, build each workload's metric source, actuator and seed history,
/// elect a leader through the Lease (when enabled), and tick until shutdown. The tick in
/// progress is finished, then the Lease is released and the API drained.
///
/// All waiting (tick interval, lease renewals, floor expiry) goes through `clock`.
pub async fn run(
    config: DaemonConfig,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let token = BearerToken::from_source(&config.api.token)?;
    let client = daemon_kube::connect(&config.kubernetes).await?;
    let store = event_store(&config, &client);
    let state = Arc::new(
        DaemonState::load(clock.clone(), Metrics::new(), store, config.workloads.clone(), config.decisions_log).await?,
    );
    let parts = build_parts(&config, &clock).await?;
    let (leadership, elector) = if config.leader_election.enabled {
        let election = &config.leader_election;
        let settings = LeaseSettings {
            namespace: election.namespace.clone().unwrap_or_else(leader::default_namespace),
            name: election.name.clone(),
            identity: election.identity.clone().unwrap_or_else(leader::default_identity),
            lease_duration: Duration::from_std(election.lease_duration).unwrap_or(Duration::seconds(15)),
            renew_interval: Duration::from_std(election.renew_interval).unwrap_or(Duration::seconds(5)),
        };
        tracing::info!(lease = %format!("{}/{}", settings.namespace, settings.name), identity = %settings.identity, "leader election on");
        (Arc::new(Leadership::elected()), Some(Arc::new(LeaderElector::new(&client, settings, clock.clone()))))
    } else {
        (Arc::new(Leadership::always()), None)
    };
    let engine = Arc::new(
        Engine::new(state.clone(), EngineSettings::from_config(&config), parts)?.with_leadership(leadership.clone()),
    );

    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .map_err(|e| DaemonError::Server { address: config.api.listen.to_string(), message: e.to_string() })?;
    let address = listener.local_addr().map_or_else(|_| config.api.listen.to_string(), |a| a.to_string());
    let router = api::router(state.clone(), engine.clone(), token, config.api.max_body_bytes);
    let (stop_api, api_stopped) = watch::channel(false);
    let server = tokio::spawn({
        let mut stopped = api_stopped.clone();
        async move {
            let signal = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            axum::serve(listener, router).with_graceful_shutdown(signal).await
        }
    });
    tracing::info!(address = %address, workloads = config.workloads.len(), "Prediction API listening");

    let (stop_election, election_stopped) = watch::channel(false);
    let (first_round, first_round_done) = tokio::sync::oneshot::channel();
    let election = elector.map(|elector| {
        let leadership = leadership.clone();
        tokio::spawn(async move { elector.run(&leadership, election_stopped, Some(first_round)).await })
    });
    if election.is_some() {
        // One election round before the first tick, so a sole replica acts from its first tick.
        let _ = first_round_done.await;
    }

    let (stop_loop, loop_stopped) = watch::channel(false);
    let shutdown_task = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_loop.send(true);
    });
    let mut loop_stop = loop_stopped.clone();
    engine
        .run(async move {
            let _ = loop_stop.wait_for(|s| *s).await;
        })
        .await;
    shutdown_task.abort();
    // The loop has finished its last tick: now give the Lease up, then drain the API.
    let _ = stop_election.send(true);
    if let Some(election) = election {
        let _ = election.await;
    }
    let _ = stop_api.send(true);
    match tokio::time::timeout(API_DRAIN, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the API server stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the API server task failed"),
        Err(_) => tracing::warn!("the API server did not drain in time"),
    }
    tracing::info!("stopped");
    Ok(())
}

fn event_store(config: &DaemonConfig, client: &KubeClient) -> Arc<dyn EventStore> {
    match &config.state {
        StateStore::File { dir } => Arc::new(FileEventStore::new(dir)),
        StateStore::Configmap { namespace, name } => Arc::new(ConfigMapEventStore::new(client, namespace, name)),
    }
}

/// Startup times from the workload's pods.
struct PodStartup(KubePods);

#[async_trait]
impl StartupObserver for PodStartup {
    async fn startup_times(&self, workload: &WorkloadRef) -> Result<Vec<std::time::Duration>, String> {
        self.0.startup_times(workload).await.map_err(|e| e.to_string())
    }
}

/// CPU and memory from `metrics.k8s.io`.
struct PodMetrics(MetricsApiSource);

#[async_trait]
impl ResourceObserver for PodMetrics {
    async fn resources(&self, workload: &WorkloadRef) -> Result<PodResourceUse, String> {
        let r = self.0.resources(workload).await.map_err(|e| e.to_string())?;
        Ok(PodResourceUse { cpu_cores: r.cpu_cores, memory_bytes: r.memory_bytes })
    }
}

/// The history a workload's `history_file` seeds, on the daemon's step (requests per step).
pub fn seed_history(workload: &WorkloadConfig, step: std::time::Duration) -> Result<Option<TimeSeries>, DaemonError> {
    let Some(path) = &workload.history_file else {
        return Ok(None);
    };
    let input =
        |e: &dyn std::fmt::Display| DaemonError::Input { file: path.display().to_string(), message: e.to_string() };
    let csv = CsvHistory::from_path(path).map_err(|e| input(&e))?;
    let step = Duration::from_std(step).map_err(|e| input(&e))?;
    let series = csv.series("requests", step, Aggregate::Sum).map_err(|e| input(&e))?;
    Ok(Some(series))
}

fn templates(signals: &BTreeMap<String, String>) -> QueryTemplates {
    let mut t = QueryTemplates::default();
    for (name, query) in signals {
        let slot = match name.as_str() {
            "request_rate" => &mut t.request_rate,
            "cpu" => &mut t.cpu,
            "memory" => &mut t.memory,
            "latency_p95" => &mut t.latency_p95,
            "error_rate" => &mut t.error_rate,
            _ => continue,
        };
        *slot = query.clone();
    }
    t
}

fn kube_mode(mode: Mode) -> KubeMode {
    match mode {
        Mode::ForecastOnly => KubeMode::ForecastOnly,
        Mode::Direct => KubeMode::Direct,
        Mode::HpaFloor => KubeMode::HpaFloor,
    }
}

/// Metric source, actuator, seed and observers for every workload.
async fn build_parts(
    config: &DaemonConfig,
    clock: &SharedClock,
) -> Result<BTreeMap<WorkloadRef, WorkloadParts>, DaemonError> {
    let base = KubeActuator::connect(
        &daemon_kube::provisioner_connection(&config.kubernetes),
        KubeMode::ForecastOnly,
        clock.clone(),
    )
    .await
    .map_err(|e| stage("kubernetes", e))?;
    let actuators: BTreeMap<&'static str, Arc<dyn Actuator>> = [Mode::ForecastOnly, Mode::Direct, Mode::HpaFloor]
        .into_iter()
        .map(|m| (m.as_str(), Arc::new(base.with_mode(kube_mode(m))) as Arc<dyn Actuator>))
        .collect();
    let needs_pods = matches!(config.metrics.source, MetricsSource::PodScrape { .. })
        || config.metrics.pod_resources
        || config.workloads.iter().any(|w| w.startup == Setting::Auto);
    let pods = if needs_pods {
        Some(
            KubePods::connect(&daemon_kube::collector_connection(&config.kubernetes))
                .await
                .map_err(|e| stage("kubernetes", e))?,
        )
    } else {
        None
    };
    let shared_source: Option<Arc<dyn MetricSource>> = match (&config.metrics.source, &pods) {
        (MetricsSource::PodScrape { port, port_annotation, path }, Some(pods)) => {
            let scrape = PodScrapeConfig {
                port: *port,
                port_annotation: Some(port_annotation.clone()),
                path: path.clone(),
                timeout: config.metrics.timeout,
                ..PodScrapeConfig::default()
            };
            Some(Arc::new(PodScrapeSource::new(pods.clone(), scrape, clock.clone()).map_err(|e| stage("metrics", e))?))
        }
        _ => None,
    };
    let resources: Option<Arc<dyn ResourceObserver>> = match (&pods, config.metrics.pod_resources) {
        (Some(pods), true) => Some(Arc::new(PodMetrics(MetricsApiSource::new(pods.clone(), clock.clone())))),
        _ => None,
    };
    let startup: Option<Arc<dyn StartupObserver>> = pods.map(|p| Arc::new(PodStartup(p)) as Arc<dyn StartupObserver>);

    let mut parts = BTreeMap::new();
    for w in &config.workloads {
        let metrics: Option<Arc<dyn MetricSource>> = match &config.metrics.source {
            MetricsSource::Prometheus { url } => {
                let prometheus = PrometheusConfig {
                    timeout: config.metrics.timeout,
                    templates: templates(&w.signals),
                    ..PrometheusConfig::new(url.clone())
                };
                Some(Arc::new(PrometheusSource::new(prometheus).map_err(|e| stage("metrics", e))?))
            }
            MetricsSource::PodScrape { .. } => shared_source.clone(),
            MetricsSource::None => None,
        };
        let actuator = actuators.get(w.mode.as_str()).cloned().ok_or_else(|| stage("engine", "no actuator"))?;
        let part = WorkloadParts {
            metrics,
            seed: seed_history(w, config.metrics.step)?,
            startup: startup.clone(),
            resources: resources.clone(),
            ..WorkloadParts::new(actuator)
        };
        parts.insert(w.workload.clone(), part);
    }
    Ok(parts)
}

/// Restore every HPA floor prescale raised in the configured workloads' namespaces, expired
/// or not: the step before uninstalling. Stop the daemon first, or it raises them again.
pub async fn release(config: &DaemonConfig, clock: SharedClock) -> Result<Vec<RestoredFloor>, DaemonError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let actuator =
        KubeActuator::connect(&daemon_kube::provisioner_connection(&config.kubernetes), KubeMode::ForecastOnly, clock)
            .await
            .map_err(|e| stage("kubernetes", e))?;
    let namespaces: BTreeSet<&str> = config.workloads.iter().map(|w| w.workload.namespace.as_str()).collect();
    let mut restored = Vec::new();
    for namespace in namespaces {
        restored.extend(actuator.release(namespace).await.map_err(|e| stage("release", e))?);
    }
    Ok(restored)
}

/// Resolve when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the daemon");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received; finishing the tick"),
        _ = terminate => tracing::info!("SIGTERM received; finishing the tick"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The harness spawns `run` on a multi-threaded runtime: its future must be `Send`.
    #[allow(dead_code)]
    fn run_is_send(config: DaemonConfig, clock: SharedClock) {
        let future = run(config, clock, async {});
        assert_send(&future);
    }

    #[test]
    fn signal_queries_replace_only_their_templates() {
        let t = templates(&[("cpu".to_string(), "up".to_string())].into());
        assert_eq!(t.cpu, "up");
        assert_eq!(t.memory, QueryTemplates::default().memory);
    }
}
