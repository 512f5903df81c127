//! The collector's Kubernetes sources against real pods of the embedded cluster: the pod-scrape
//! source reads each Ready pod's `/metrics` (request rate in real requests per second, error
//! rate, p95), `metrics.k8s.io` gives CPU and memory, and pods' startup times are learned.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use std::time::Duration;

use common::*;
use prescale_cluster::DeploymentSpec;
use prescale_collector::{
    KubeConnection, KubePods, MetricSource, MetricsApiSource, PodScrapeConfig, PodScrapeSource, Signal,
};
use prescale_core::WorkloadRef;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_scrape_and_metrics_api_read_real_pods() {
    let clock = common::clock();
    let cluster = start_cluster(clock.clone()).await;
    cluster.create_deployment(&DeploymentSpec::new("shop", "web", 2)).await.unwrap();
    let (dir, _, kubeconfig) = workdir(&cluster);
    let pods = KubePods::connect(&KubeConnection::Kubeconfig { path: Some(kubeconfig), context: None }).await.unwrap();
    let web = WorkloadRef::new("shop", "web");
    wait_until("two Ready pods", Duration::from_secs(60), || {
        let pods = pods.clone();
        let web = web.clone();
        async move { pods.pods(&web).await.is_ok_and(|p| p.iter().filter(|p| p.ready).count() == 2) }
    })
    .await;

    // Startup: 45 s +- 5 s of cluster clock from creation to Ready.
    let startups = pods.startup_times(&web).await.unwrap();
    assert_eq!(startups.len(), 2);
    for s in &startups {
        assert!((38..=52).contains(&s.as_secs()), "startup {s:?}");
    }

    let url = cluster.service_url("shop", "web").await.unwrap();
    let load = Load::start(url, 40.0);
    // The default port annotation (prometheus.io/port) is set by the cluster on every pod.
    let source = PodScrapeSource::new(pods.clone(), PodScrapeConfig::default(), clock.clone()).unwrap();
    let mut rates = Vec::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        if let Some(rate) = source.instant(&web, Signal::RequestRate, clock.now()).await.unwrap() {
            rates.push(rate);
        }
    }
    drop(load);
    assert!(rates.len() >= 6, "a rate after every read but the first: {rates:?}");
    let mean = rates[1..].iter().sum::<f64>() / (rates.len() - 1) as f64;
    // 40 requests per REAL second, although the clock runs 60x.
    assert!((28.0..=52.0).contains(&mean), "mean rate {mean} from {rates:?}");
    let errors = source.instant(&web, Signal::ErrorRate, clock.now()).await.unwrap();
    assert!(errors.is_none_or(|e| e < 0.05), "error rate {errors:?}");
    let p95 = source.instant(&web, Signal::LatencyP95, clock.now()).await.unwrap().expect("a p95");
    assert!((0.015..=1.0).contains(&p95), "p95 {p95} s for a 20 ms service time");

    // The range answer lays the samples on the clock's grid; a point without a sample is missing.
    let to = clock.now();
    let series = source
        .range(&web, Signal::RequestRate, to - chrono::Duration::minutes(10), to, chrono::Duration::minutes(1))
        .await
        .unwrap();
    let present: Vec<f64> = series.values().iter().flatten().copied().collect();
    assert!(!present.is_empty() && present.iter().all(|r| *r > 10.0), "{:?}", series.values());
    assert!(series.values().iter().any(Option::is_none), "minutes before the first read are missing, not zero");
    assert!(matches!(
        source.instant(&web, Signal::Cpu, clock.now()).await,
        Err(prescale_collector::CollectorError::UnsupportedSignal { .. })
    ));

    let resources = MetricsApiSource::new(pods.clone(), clock.clone());
    let r = resources.resources(&web).await.unwrap();
    assert_eq!(r.pods, 2);
    assert!(r.memory_bytes > 1e6, "{r:?}");
    assert!(r.cpu_cores >= 0.0, "{r:?}");
    let cpu = resources.instant(&web, Signal::Cpu, clock.now()).await.unwrap();
    assert!(cpu.is_some());
    let missing = resources.resources(&WorkloadRef::new("shop", "nope")).await;
    assert!(missing.is_err());
    drop(dir);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configmap_event_store_round_trips_through_the_api_server() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use prescale_daemon::config::KubernetesConnection;
    use prescale_daemon::kube::{ConfigMapEventStore, connect};
    use prescale_daemon::store::EventStore;

    let cluster = start_cluster(common::clock()).await;
    let (_dir, _, kubeconfig) = workdir(&cluster);
    let client = kube_client(&cluster);
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
    let empty: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "prescale-events"}})).unwrap();
    api.create(&kube::api::PostParams::default(), &empty).await.unwrap();

    let connection = KubernetesConnection::Kubeconfig { path: Some(kubeconfig), context: None };
    let store = ConfigMapEventStore::new(&connect(&connection).await.unwrap(), "default", "prescale-events");
    let event: prescale_core::ScheduledEvent = serde_json::from_value(serde_json::json!({
        "id": "spring", "name": "Spring campaign", "kind": "marketing-campaign",
        "start": "2026-03-01T14:00:00Z", "end": "2026-03-01T15:00:00Z", "expected_multiplier": 3.0}))
    .unwrap();
    let web = WorkloadRef::new("shop", "web.v2");
    store.save(&web, std::slice::from_ref(&event)).await.unwrap();
    store.save(&WorkloadRef::new("shop", "api"), &[]).await.unwrap();
    // A new store over the same ConfigMap, as after a restart.
    let again = ConfigMapEventStore::new(&connect(&connection).await.unwrap(), "default", "prescale-events");
    let loaded = again.load().await.unwrap();
    assert_eq!(loaded[&web], vec![event]);
    assert!(loaded[&WorkloadRef::new("shop", "api")].is_empty());
    let missing = ConfigMapEventStore::new(&connect(&connection).await.unwrap(), "default", "absent");
    let err = missing.load().await.unwrap_err();
    assert!(err.to_string().contains("ConfigMap absent"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_taken_over_only_after_a_whole_unrenewed_duration() {
    use prescale_core::{ManualClock, SharedClock};
    use prescale_daemon::config::KubernetesConnection;
    use prescale_daemon::kube::connect;
    use prescale_daemon::leader::{LeaderElector, LeaseSettings};

    let cluster = start_cluster(common::clock()).await;
    let (_dir, _, kubeconfig) = workdir(&cluster);
    let client = connect(&KubernetesConnection::Kubeconfig { path: Some(kubeconfig), context: None }).await.unwrap();
    let manual = ManualClock::new("2026-03-01T12:00:00Z".parse().unwrap());
    let clock: SharedClock = std::sync::Arc::new(manual.clone());
    let settings = |identity: &str| LeaseSettings {
        namespace: "default".into(),
        name: "prescaled".into(),
        identity: identity.into(),
        lease_duration: chrono::Duration::seconds(15),
        renew_interval: chrono::Duration::seconds(5),
    };
    let a = LeaderElector::new(&client, settings("a"), clock.clone());
    let b = LeaderElector::new(&client, settings("b"), clock.clone());
    assert!(a.try_acquire_or_renew().await.unwrap(), "a creates the Lease");
    assert!(!b.try_acquire_or_renew().await.unwrap(), "b sees a holder");
    manual.advance(chrono::Duration::seconds(10));
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
    manual.advance(chrono::Duration::seconds(10));
    assert!(!b.try_acquire_or_renew().await.unwrap(), "renewed 10 s ago: still a's");
    // a stops renewing (a crash): b waits a whole duration from when it SAW the last change.
    manual.advance(chrono::Duration::seconds(14));
    assert!(!b.try_acquire_or_renew().await.unwrap(), "14 s unchanged: not yet");
    manual.advance(chrono::Duration::seconds(2));
    assert!(b.try_acquire_or_renew().await.unwrap(), "16 s unchanged: b takes over");
    assert!(!a.try_acquire_or_renew().await.unwrap(), "a learns it lost the Lease");
    b.release().await.unwrap();
    assert!(a.try_acquire_or_renew().await.unwrap(), "a released Lease is free at once");
    cluster.shutdown().await;
}
