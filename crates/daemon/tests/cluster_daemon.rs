//! The daemon end to end against the embedded cluster, through `prescale_daemon::run` in
//! process on a 60x clock: `direct` and `hpa-floor` scale ahead of an announced event and back
//! after it, a raised floor is restored after its expiry across a restart, and of two daemons
//! on one Lease only one acts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use prescale_cluster::{AutoscalerSpec, Cluster, DeploymentSpec};
use prescale_core::SharedClock;
use serde_json::{Value, json};

const NS: &str = "default";
const APP: &str = "shop";
/// Real requests per second the test sends; the seed history has the same level.
const RPS: f64 = 2.0;

struct Options<'a> {
    mode: &'a str,
    identity: &'a str,
    state_dir: &'a str,
}

fn yaml(dir: &std::path::Path, options: &Options<'_>) -> String {
    let d = dir.display();
    format!(
        r#"
tick_interval: 30s
api: {{ listen: "{{listen}}", token_file: {d}/token }}
kubernetes: {{ connection: kubeconfig, kubeconfig: {d}/kubeconfig }}
metrics: {{ source: pod-scrape, step: 1m }}
state: {{ store: file, dir: {d}/{state} }}
leader_election: {{ namespace: default, name: prescaled, identity: {identity}, lease_duration: 120s, renew_interval: 20s }}
workloads:
  - namespace: {NS}
    name: {APP}
    mode: {mode}
    min_replicas: 3
    max_replicas: 12
    # 1 request per second per pod at 100 %: 2 rps need 3 pods, 6 rps need 9.
    capacity_per_pod: 1
    target_utilization: 0.7
    startup: 3m
    stabilization_window: 2m
    max_scale_down_fraction: 0.5
    history_file: {d}/history.csv
"#,
        mode = options.mode,
        identity = options.identity,
        state = options.state_dir,
    )
}

struct Fixture {
    clock: SharedClock,
    cluster: Cluster,
    client: kube::Client,
    dir: tempfile::TempDir,
    _load: Load,
}

async fn fixture(hpa: bool) -> Fixture {
    let clock = common::clock();
    let cluster = start_cluster(clock.clone()).await;
    cluster.create_deployment(&DeploymentSpec::new(NS, APP, 3)).await.unwrap();
    if hpa {
        let spec = AutoscalerSpec {
            namespace: NS.into(),
            name: format!("{APP}-hpa"),
            deployment: APP.into(),
            min_replicas: 3,
            max_replicas: 12,
            target_cpu_percent: 70,
        };
        cluster.create_hpa(&spec).await.unwrap();
    }
    let (dir, _, _) = workdir(&cluster);
    flat_history(&dir.path().join("history.csv"), clock.now(), 1, RPS * 60.0);
    wait_until("3 Ready pods", Duration::from_secs(60), || async {
        cluster.deployment_state(NS, APP).is_ok_and(|s| s.ready == 3)
    })
    .await;
    let url = cluster.service_url(NS, APP).await.unwrap();
    let load = Load::start(url, RPS);
    let client = kube_client(&cluster);
    Fixture { clock, cluster, client, dir, _load: load }
}

/// Announce a x3 event starting `lead` minutes from now, lasting ten minutes.
async fn announce(daemon: &Daemon, clock: &SharedClock, lead: i64) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let start = clock.now() + chrono::Duration::minutes(lead);
    let end = start + chrono::Duration::minutes(10);
    let event = json!({"id": "flash-sale", "name": "Flash sale", "kind": "marketing-campaign",
        "start": start.to_rfc3339(), "end": end.to_rfc3339(), "expected_multiplier": 3.0});
    let (status, body) = daemon.post(&format!("/v1/workloads/{NS}/{APP}/events"), &event).await;
    assert_eq!(status, 201, "{body}");
    (start, end)
}

async fn events_with(client: &kube::Client, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), NS);
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason) && e.involved_object.name.as_deref() == Some(APP))
        .filter_map(|e| e.message)
        .collect()
}

async fn hpa(client: &kube::Client) -> HorizontalPodAutoscaler {
    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), NS).get(&format!("{APP}-hpa")).await.unwrap()
}

fn annotation(hpa: &HorizontalPodAutoscaler, key: &str) -> Option<String> {
    hpa.metadata.annotations.as_ref().and_then(|a| a.get(key).cloned())
}

fn min_replicas(hpa: &HorizontalPodAutoscaler) -> i32 {
    hpa.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_scales_ahead_of_an_announced_event_and_back_after_it() {
    let f = fixture(false).await;
    let options = Options { mode: "direct", identity: "solo", state_dir: "state" };
    let daemon = Daemon::start(f.dir.path(), "direct", &yaml(f.dir.path(), &options), f.clock.clone()).await;
    let (start, end) = announce(&daemon, &f.clock, 12).await;

    wait_until("9 Ready pods", Duration::from_secs(90), || async {
        f.cluster.deployment_state(NS, APP).is_ok_and(|s| s.ready >= 9)
    })
    .await;
    let ready_at = f.clock.now();
    assert!(ready_at < start, "pods Ready at {ready_at}, before the event at {start}");
    let up = events_with(&f.client, "PredictiveScaleUp").await;
    assert!(up.iter().any(|m| m.contains("scaled the Deployment from 3 to 9")), "{up:?}");
    let deployment =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(f.client.clone(), NS).get(APP).await.unwrap();
    let last = deployment.metadata.annotations.unwrap_or_default().remove("prescale.io/last-decision").unwrap();
    let last: Value = serde_json::from_str(&last).unwrap();
    assert_eq!((last["current"].clone(), last["target"].clone()), (json!(3), json!(9)), "{last}");
    let forecast = daemon.get(&format!("/v1/workloads/{NS}/{APP}/forecast")).await;
    assert_eq!(forecast["planned_replicas"], 9, "{forecast}");
    assert!(forecast["explanation"].as_str().unwrap().contains("Flash sale"), "{forecast}");

    // After the event and the stabilization window, back down to the baseline.
    wait_until("scale-down back to 3", Duration::from_secs(120), || async {
        f.cluster.deployment_state(NS, APP).is_ok_and(|s| s.spec == 3)
    })
    .await;
    let down_at = f.clock.now();
    assert!(down_at > end + chrono::Duration::minutes(2), "not before the stabilization window: {down_at} vs {end}");
    let down = events_with(&f.client, "PredictiveScaleDown").await;
    assert!(!down.is_empty(), "a PredictiveScaleDown Event");
    let metrics = reqwest::get(format!("{}/metrics", daemon.base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"prescale_decisions_total{namespace="default",workload="shop",kind="up"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("prescale_pod_memory_bytes"), "metrics.k8s.io is read");
    daemon.stop().await;
    f.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_floor_raises_the_users_floor_and_restores_it() {
    let f = fixture(true).await;
    let options = Options { mode: "hpa-floor", identity: "solo", state_dir: "state" };
    let daemon = Daemon::start(f.dir.path(), "floor", &yaml(f.dir.path(), &options), f.clock.clone()).await;
    let (start, end) = announce(&daemon, &f.clock, 12).await;

    wait_until("the HPA floor raised to 9", Duration::from_secs(90), || async {
        min_replicas(&hpa(&f.client).await) == 9
    })
    .await;
    let raised = hpa(&f.client).await;
    assert_eq!(annotation(&raised, "prescale.io/original-min-replicas").as_deref(), Some("3"));
    let expires = annotation(&raised, "prescale.io/floor-expires-at").unwrap();
    let expires: chrono::DateTime<Utc> = expires.parse().unwrap();
    assert_eq!(expires, end + chrono::Duration::minutes(2), "event end plus the stabilization window");
    // The HPA (the cluster's controller) brings the Deployment up to the floor in time.
    wait_until("9 Ready pods", Duration::from_secs(90), || async {
        f.cluster.deployment_state(NS, APP).is_ok_and(|s| s.ready >= 9)
    })
    .await;
    assert!(f.clock.now() < start, "Ready before the event");
    let up = events_with(&f.client, "PredictiveScaleUp").await;
    assert!(up.iter().any(|m| m.contains("minReplicas from 3 to 9")), "{up:?}");

    wait_until("the user's floor restored", Duration::from_secs(120), || async {
        let h = hpa(&f.client).await;
        min_replicas(&h) == 3 && annotation(&h, "prescale.io/original-min-replicas").is_none()
    })
    .await;
    assert!(f.clock.now() > end, "restored after the event");
    let apis: Api<HorizontalPodAutoscaler> = Api::namespaced(f.client.clone(), NS);
    assert_eq!(apis.list(&ListParams::default()).await.unwrap().items.len(), 1, "no second HPA");
    daemon.stop().await;
    f.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_floor_survives_a_restart_only_until_it_expires() {
    let f = fixture(true).await;
    let options = Options { mode: "hpa-floor", identity: "first", state_dir: "state-1" };
    let first = Daemon::start(f.dir.path(), "first", &yaml(f.dir.path(), &options), f.clock.clone()).await;
    let (_, end) = announce(&first, &f.clock, 6).await;
    wait_until("the HPA floor raised", Duration::from_secs(90), || async { min_replicas(&hpa(&f.client).await) > 3 })
        .await;
    first.stop().await;
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(f.client.clone(), NS)
        .get("prescaled")
        .await
        .unwrap();
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), None, "a stopped daemon releases its Lease");
    // A stop keeps the raise: capacity does not drop during a restart.
    let kept = hpa(&f.client).await;
    assert!(min_replicas(&kept) > 3);
    let expires: chrono::DateTime<Utc> = annotation(&kept, "prescale.io/floor-expires-at").unwrap().parse().unwrap();
    assert!(expires >= end, "{expires} vs {end}");
    let clock = f.clock.clone();
    wait_until("the raise to expire", Duration::from_secs(120), || async { clock.now() > expires }).await;
    assert!(min_replicas(&hpa(&f.client).await) > 3, "nobody restored it while no daemon ran");

    // A new daemon (without the event) restores the expired floor at its first tick.
    let options = Options { mode: "hpa-floor", identity: "second", state_dir: "state-2" };
    let second = Daemon::start(f.dir.path(), "second", &yaml(f.dir.path(), &options), f.clock.clone()).await;
    wait_until("the expired floor restored", Duration::from_secs(30), || async {
        let h = hpa(&f.client).await;
        min_replicas(&h) == 3 && annotation(&h, "prescale.io/floor-expires-at").is_none()
    })
    .await;
    let down = events_with(&f.client, "PredictiveScaleDown").await;
    assert!(down.iter().any(|m| m.contains("expired")), "{down:?}");
    second.stop().await;
    f.cluster.shutdown().await;
}

fn leaders(decisions: &[Value]) -> (usize, usize) {
    let leader = decisions.iter().filter(|d| d["leader"] == true).count();
    (leader, decisions.len() - leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_lease_only_one_acts() {
    let f = fixture(false).await;
    let a = Daemon::start(
        f.dir.path(),
        "a",
        &yaml(f.dir.path(), &Options { mode: "direct", identity: "replica-a", state_dir: "state-a" }),
        f.clock.clone(),
    )
    .await;
    let b = Daemon::start(
        f.dir.path(),
        "b",
        &yaml(f.dir.path(), &Options { mode: "direct", identity: "replica-b", state_dir: "state-b" }),
        f.clock.clone(),
    )
    .await;
    // Both hear of the event (each keeps its own file store here).
    announce(&a, &f.clock, 8).await;
    announce(&b, &f.clock, 8).await;
    wait_until("9 replicas", Duration::from_secs(90), || async {
        f.cluster.deployment_state(NS, APP).is_ok_and(|s| s.spec >= 9)
    })
    .await;
    // Some ticks on both sides of the change.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (da, db) = (a.decisions().await, b.decisions().await);
    let ((a_lead, a_follow), (b_lead, b_follow)) = (leaders(&da), leaders(&db));
    assert!(a_lead > 0 && a_follow == 0, "a started first and leads: {a_lead}/{a_follow}");
    assert!(b_lead == 0 && b_follow > 0, "b follows: {b_lead}/{b_follow}");
    assert!(db.iter().all(|d| d["applied"] == false), "a follower never writes");
    assert!(db.iter().any(|d| d["target"] == 9), "the follower decides (for its read API) all the same");
    let lease: Value = {
        let api: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(f.client.clone(), NS);
        serde_json::to_value(api.get("prescaled").await.unwrap()).unwrap()
    };
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");

    // The leader stops and releases the Lease: the follower takes over.
    a.stop().await;
    let clock = f.clock.clone();
    let since = clock.now();
    wait_until("b to lead", Duration::from_secs(30), || async {
        b.decisions().await.iter().any(|d| {
            d["leader"] == true && d["at"].as_str().and_then(|t| t.parse::<chrono::DateTime<Utc>>().ok()) > Some(since)
        })
    })
    .await;
    b.stop().await;
    f.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_restores_every_raised_floor() {
    let f = fixture(true).await;
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(f.client.clone(), NS);
    // A floor raised by an earlier daemon, still far from its expiry.
    let expires = (f.clock.now() + chrono::Duration::hours(5)).to_rfc3339();
    let patch = json!({"metadata": {"annotations": {
            "prescale.io/original-min-replicas": "3", "prescale.io/raised-min-replicas": "7",
            "prescale.io/floor-expires-at": expires}},
        "spec": {"minReplicas": 7}});
    api.patch(&format!("{APP}-hpa"), &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    let options = Options { mode: "hpa-floor", identity: "release", state_dir: "state" };
    let config = f.dir.path().join("release.yaml");
    std::fs::write(&config, yaml(f.dir.path(), &options).replace("{listen}", "127.0.0.1:0")).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_prescaled"))
        .args(["release", "--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("default/shop: HPA shop-hpa minReplicas 7 -> 3 (restored)"), "{text}");
    let h = hpa(&f.client).await;
    assert_eq!(min_replicas(&h), 3);
    assert!(annotation(&h, "prescale.io/original-min-replicas").is_none());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_prescaled"))
        .args(["release", "--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no raised HPA floor found"));
    f.cluster.shutdown().await;
}
