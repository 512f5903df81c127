//! The Prediction API through its router, without a socket: mutations need the bearer token,
//! bad input gets a 4xx naming the field, a what-if changes no state, accepted events survive
//! a restart (a new router over the same store), bodies are size-limited.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use prescale_core::{ManualClock, ReplicaState, SharedClock, TimeSeries, WorkloadRef};
use prescale_daemon::api::{BearerToken, router};
use prescale_daemon::config::{Mode, PredictorKind, Setting, WorkloadConfig};
use prescale_daemon::engine::{Engine, EngineSettings, WorkloadParts};
use prescale_daemon::metrics::Metrics;
use prescale_daemon::state::DaemonState;
use prescale_daemon::store::FileEventStore;
use prescale_provisioner::testutil::FakeActuator;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "secret-token-0123456789";

fn t0() -> DateTime<Utc> {
    "2026-03-02T12:00:30Z".parse().unwrap()
}

fn web() -> WorkloadRef {
    WorkloadRef::new("shop", "web")
}

fn config() -> WorkloadConfig {
    WorkloadConfig {
        workload: web(),
        mode: Mode::ForecastOnly,
        min_replicas: 1,
        max_replicas: 40,
        capacity_per_pod: Setting::Fixed(10.0),
        target_utilization: 0.7,
        startup: Setting::Fixed(StdDuration::from_secs(120)),
        safety_buffer: StdDuration::from_secs(30),
        stabilization_window: StdDuration::from_secs(300),
        max_scale_down_fraction: 0.25,
        tolerance: 0.1,
        scale_down_cooldown: StdDuration::from_secs(120),
        horizon: StdDuration::from_secs(3600),
        signals: BTreeMap::new(),
        events: vec![],
        history_file: None,
        predictor: PredictorKind::StatisticalEvents,
    }
}

/// A router over a state in `dir`, with an engine whose history is 3 h at 10 rps.
async fn app(dir: &Path) -> (Router, Arc<Engine>) {
    let clock: SharedClock = Arc::new(ManualClock::new(t0()));
    let store = Arc::new(FileEventStore::new(dir));
    let state = Arc::new(DaemonState::load(clock, Metrics::new(), store, vec![config()], 100).await.unwrap());
    let fake = Arc::new(
        FakeActuator::new()
            .with_workload(web(), ReplicaState { spec: 2, ready: 2, hpa_floor: None, observed_load: None }),
    );
    let end = t0() - Duration::seconds(30);
    let seed = TimeSeries::from_values(end - Duration::hours(3), Duration::minutes(1), vec![600.0; 180]).unwrap();
    let parts = [(web(), WorkloadParts { seed: Some(seed), ..WorkloadParts::new(fake) })].into();
    let settings = EngineSettings {
        tick: Duration::seconds(60),
        refit: Duration::hours(6),
        concurrency: 1,
        step_secs: 60,
        stale_after: Duration::minutes(3),
        history_len: 1440,
        metrics_timeout: StdDuration::from_secs(5),
        predict_timeout: StdDuration::from_secs(5),
        llm: None,
    };
    let engine = Arc::new(Engine::new(state.clone(), settings, parts).unwrap());
    (router(state, engine.clone(), BearerToken::new(TOKEN).unwrap(), 4096), engine)
}

async fn send(app: &Router, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn event(id: &str) -> Value {
    json!({"id": id, "name": "Spring campaign", "kind": "marketing-campaign",
        "start": "2026-03-02T12:20:00Z", "end": "2026-03-02T13:20:00Z", "expected_multiplier": 3.0})
}

const EVENTS: &str = "/v1/workloads/shop/web/events";

#[tokio::test]
async fn mutations_need_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(dir.path()).await;
    let predict = json!({"namespace": "shop", "name": "web", "events": []});
    for (method, uri, body) in [
        ("POST", EVENTS, Some(event("a"))),
        ("DELETE", "/v1/workloads/shop/web/events/a", None),
        ("POST", "/v1/predict", Some(predict.clone())),
    ] {
        let (status, body_seen) = send(&app, method, uri, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body_seen}");
        assert!(body_seen["error"].as_str().unwrap().contains("Bearer"), "{body_seen}");
        let (status, _) = send(&app, method, uri, Some("wrong-token-0123456789"), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} with a wrong token");
    }
    // Reads are open.
    for uri in ["/v1/workloads", EVENTS, "/v1/decisions", "/healthz", "/openapi.json", "/metrics"] {
        let (status, _) = send(&app, "GET", uri, None, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    let (status, _) = send(&app, "POST", EVENTS, Some(TOKEN), Some(event("a"))).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(dir.path()).await;
    let mut backwards = event("b");
    backwards["end"] = json!("2026-03-02T12:00:00Z");
    let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(backwards)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "end", "{body}");
    assert!(body["problem"].as_str().unwrap().contains("after start"), "{body}");

    let mut typo = event("c");
    typo["multiplier"] = json!(2);
    let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(typo)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "multiplier", "{body}");

    let mut wrong_type = event("d");
    wrong_type["expected_multiplier"] = json!("lots");
    let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(wrong_type)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "expected_multiplier", "{body}");

    let mut missing = event("e");
    missing.as_object_mut().unwrap().remove("kind");
    let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(missing)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "kind", "{body}");

    let predict = json!({"namespace": "shop", "name": "web", "events": [{"id": "x y", "name": "n", "kind": "k",
        "start": "2026-03-02T12:20:00Z", "end": "2026-03-02T13:20:00Z"}]});
    let (status, body) = send(&app, "POST", "/v1/predict", Some(TOKEN), Some(predict)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "events[0].id", "{body}");

    let (status, body) = send(&app, "POST", "/v1/workloads/shop/nope/events", Some(TOKEN), Some(event("f"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("shop/nope"), "{body}");

    let (status, _) = send(&app, "POST", EVENTS, Some(TOKEN), Some(event("g"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(event("g"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["field"], "id");

    let mut huge = event("h");
    huge["description"] = json!("x".repeat(8000));
    let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let (status, body) = send(&app, "GET", "/v1/decisions?limit=many", None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "limit");
}

#[tokio::test]
async fn a_what_if_forecasts_the_event_and_leaves_state_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (app, engine) = app(dir.path()).await;
    engine.tick().await;
    let before_workloads = send(&app, "GET", "/v1/workloads", None, None).await.1;
    let before_forecast = send(&app, "GET", "/v1/workloads/shop/web/forecast", None, None).await.1;
    let before_decisions = send(&app, "GET", "/v1/decisions", None, None).await.1;
    assert_eq!(before_forecast["planned_replicas"], 2, "{before_forecast}");

    let mut surge = event("what-if");
    surge["start"] = json!("2026-03-02T12:03:00Z");
    surge["expected_multiplier"] = json!(4.0);
    let (status, plan) = send(
        &app,
        "POST",
        "/v1/predict",
        Some(TOKEN),
        Some(json!({"namespace": "shop", "name": "web", "events": [surge]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    // 40 rps at 10 per pod and 70 %: 6 pods planned, without acting.
    assert_eq!(plan["planned_replicas"], 6, "{plan}");
    assert_eq!(plan["source"], "statistical+events");
    assert!(plan["explanation"].as_str().unwrap().contains("Spring campaign"), "{plan}");
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 60);
    for key in ["t", "p50", "p90", "baseline"] {
        assert!(steps[0].get(key).is_some(), "{key} in {}", steps[0]);
    }

    assert_eq!(send(&app, "GET", "/v1/workloads", None, None).await.1, before_workloads);
    assert_eq!(send(&app, "GET", "/v1/workloads/shop/web/forecast", None, None).await.1, before_forecast);
    assert_eq!(send(&app, "GET", "/v1/decisions", None, None).await.1, before_decisions);
    let events = send(&app, "GET", EVENTS, None, None).await.1;
    assert_eq!(events["events"], json!([]), "the hypothetical event is not stored");
    assert!(std::fs::read_dir(dir.path()).map_or(0, |d| d.count()) == 0, "nothing written to the store");
    // And the next real tick is not moved by the what-if either.
    let report = engine.tick().await;
    assert_eq!(report.decisions[&web()].target, 2);
}

#[tokio::test]
async fn accepted_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (app, _) = app(dir.path()).await;
        for id in ["one", "two"] {
            let (status, body) = send(&app, "POST", EVENTS, Some(TOKEN), Some(event(id))).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body["id"], id);
        }
        let (status, _) = send(&app, "DELETE", "/v1/workloads/shop/web/events/one", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    // A new router over the same store, as after a restart.
    let (app, _) = app(dir.path()).await;
    let events = send(&app, "GET", EVENTS, None, None).await.1;
    let listed = events["events"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{events}");
    assert_eq!(listed[0]["id"], "two");
    assert_eq!(listed[0]["origin"], "api");
    assert_eq!(listed[0]["expected_multiplier"], 3.0);
    let (status, _) = send(&app, "DELETE", "/v1/workloads/shop/web/events/one", Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted before the restart");
}

#[tokio::test]
async fn workloads_forecast_decisions_metrics_and_openapi_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (app, engine) = app(dir.path()).await;
    let (status, body) = send(&app, "GET", "/v1/workloads/shop/web/forecast", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no forecast before the first tick: {body}");
    let (status, _) = send(&app, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    engine.tick().await;
    engine.state().set_ready();
    let (status, _) = send(&app, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let workloads = send(&app, "GET", "/v1/workloads", None, None).await.1;
    let w = &workloads["workloads"][0];
    assert_eq!(w["mode"], "forecast-only");
    assert_eq!(w["current_replicas"], 2);
    assert!(w["explanation"].as_str().unwrap().contains("bound"), "{w}");
    let decisions = send(&app, "GET", "/v1/decisions?limit=1", None, None).await.1;
    assert_eq!(decisions["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(decisions["decisions"][0]["applied"], false);
    let openapi = send(&app, "GET", "/openapi.json", None, None).await.1;
    assert_eq!(openapi["openapi"], "3.1.0");
    for path in ["/v1/workloads", "/v1/predict", "/v1/decisions", "/v1/workloads/{namespace}/{name}/events"] {
        assert!(openapi["paths"].get(path).is_some(), "{path} documented");
    }
    let (status, body) = send(&app, "GET", "/v2/anything", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("openapi"), "{body}");
}

#[tokio::test]
async fn events_accepted_by_another_replica_count_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    // Two replicas over one store (in a cluster: one ConfigMap).
    let (leader, leader_engine) = app(dir.path()).await;
    let (follower, _) = app(dir.path()).await;
    let (status, _) = send(&follower, "POST", EVENTS, Some(TOKEN), Some(event("via-follower"))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(send(&leader, "GET", EVENTS, None, None).await.1["events"], json!([]));
    leader_engine.state().reload_events().await;
    let events = send(&leader, "GET", EVENTS, None, None).await.1;
    assert_eq!(events["events"][0]["id"], "via-follower", "{events}");
}
