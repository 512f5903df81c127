//! PrometheusSource against fake HTTP servers on loopback: the wire format of calls,
//! range splitting, and every failure mode that a real Prometheus rarely shows on demand.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Duration, Utc};
use prescale_collector::{CollectorError, MetricSource, PrometheusConfig, PrometheusSource, Signal};
use prescale_core::WorkloadRef;

type Calls = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Serves `router` on a free loopback port; returns the base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn source(base: &str, timeout: StdDuration, max_points: usize) -> PrometheusSource {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = PrometheusConfig::new(base);
    config.timeout = timeout;
    config.max_points_per_query = max_points;
    PrometheusSource::new(config).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A fake range endpoint: the value at each evaluation time is the time itself,
/// except every 7th evaluation, which is `NaN`, and every 11th, which is absent.
async fn fake_range(State(calls): State<Calls>, Query(params): Query<HashMap<String, String>>) -> impl IntoResponse {
    calls.lock().unwrap().push(params.clone());
    let num = |k: &str| params[k].parse::<i64>().unwrap();
    let (start, end, step) = (num("start"), num("end"), num("step"));
    let values: Vec<serde_json::Value> = (start..=end)
        .step_by(step as usize)
        .filter(|ts| (ts / step) % 11 != 0)
        .map(|ts| {
            let v = if (ts / step) % 7 == 0 { "NaN".to_string() } else { ts.to_string() };
            serde_json::json!([ts, v])
        })
        .collect();
    axum::Json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
    }))
}

#[tokio::test]
async fn long_ranges_are_split_and_reassembled_on_the_grid() {
    let calls: Calls = Arc::default();
    let router = Router::new().route("/prom/api/v1/query_range", get(fake_range)).with_state(calls.clone());
    let base = serve(router).await;
    let prom = source(&format!("{base}/prom"), StdDuration::from_secs(5), 10);
    let from = t("2026-01-01T00:00:30Z");
    let series = prom
        .range(
            &WorkloadRef::new("shop", "frontend"),
            Signal::RequestRate,
            from,
            from + Duration::minutes(25),
            Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(series.start(), t("2026-01-01T00:00:00Z"));
    assert_eq!(series.len(), 25);
    for (i, v) in series.values().iter().enumerate() {
        let eval = series.timestamp(i + 1).timestamp();
        let expected = if (eval / 60) % 11 == 0 || (eval / 60) % 7 == 0 { None } else { Some(eval as f64) };
        assert_eq!(*v, expected, "point {i}");
    }
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    let windows: Vec<(i64, i64)> =
        calls.iter().map(|c| (c["start"].parse().unwrap(), c["end"].parse().unwrap())).collect();
    let base_ts = t("2026-01-01T00:00:00Z").timestamp();
    assert_eq!(
        windows,
        [(base_ts + 60, base_ts + 600), (base_ts + 660, base_ts + 1200), (base_ts + 1260, base_ts + 1500)]
    );
    assert!(calls.iter().all(|c| c["step"] == "60" && c["timeout"] == "5000ms"));
    assert!(calls[0]["query"].contains(r#"namespace="shop",pod=~"frontend-.*""#), "{}", calls[0]["query"]);
}

#[tokio::test]
async fn instant_sends_the_time_and_reads_the_value() {
    let calls: Calls = Arc::default();
    let handler = |State(calls): State<Calls>, Query(p): Query<HashMap<String, String>>| async move {
        calls.lock().unwrap().push(p);
        axum::Json(serde_json::json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1767225600.5,"12.5"]}]}}))
    };
    let router = Router::new().route("/api/v1/query", get(handler)).with_state(calls.clone());
    let prom = source(&serve(router).await, StdDuration::from_secs(5), 11_000);
    let at = t("2026-01-01T00:00:00.500Z");
    let value = prom.instant(&WorkloadRef::new("shop", "frontend"), Signal::Memory, at).await.unwrap();
    assert_eq!(value, Some(12.5));
    let calls = calls.lock().unwrap();
    assert_eq!(calls[0]["time"], "1767225600.500");
    assert!(calls[0]["query"].starts_with("sum(container_memory_working_set_bytes"), "{}", calls[0]["query"]);
}

#[tokio::test]
async fn prometheus_error_body_with_http_400_is_a_query_error() {
    let handler = || async {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(
                serde_json::json!({"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}),
            ),
        )
    };
    let prom =
        source(&serve(Router::new().route("/api/v1/query", get(handler))).await, StdDuration::from_secs(5), 11_000);
    let err = prom.query_instant("sum(", t("2026-01-01T00:00:00Z")).await.unwrap_err();
    assert!(
        matches!(&err, CollectorError::Query { error_type, query, .. } if error_type == "bad_data" && query == "sum("),
        "{err}"
    );
}

#[tokio::test]
async fn plain_http_error_keeps_the_status() {
    let handler = || async { (StatusCode::BAD_GATEWAY, "upstream down") };
    let base = serve(Router::new().route("/api/v1/query_range", get(handler))).await;
    let prom = source(&base, StdDuration::from_secs(5), 11_000);
    let err = prom
        .query_range("up", t("2026-01-01T00:00:00Z"), t("2026-01-01T01:00:00Z"), Duration::minutes(1))
        .await
        .unwrap_err();
    match err {
        CollectorError::Http { status, body, url } => {
            assert_eq!(status, 502);
            assert_eq!(body, "upstream down");
            assert_eq!(url, format!("{base}/api/v1/query_range"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn empty_matrix_over_the_whole_range_is_empty_result() {
    let handler =
        || async { axum::Json(serde_json::json!({"status":"success","data":{"resultType":"matrix","result":[]}})) };
    let prom = source(
        &serve(Router::new().route("/api/v1/query_range", get(handler))).await,
        StdDuration::from_secs(5),
        11_000,
    );
    let err =
        prom.query_range("nothing", t("2026-01-01T00:00:00Z"), t("2026-01-01T01:00:00Z"), Duration::minutes(1)).await;
    assert!(matches!(err, Err(CollectorError::EmptyResult { query }) if query == "nothing"));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let prom = source(&format!("http://{addr}"), StdDuration::from_millis(300), 11_000);
    let started = Instant::now();
    let err = prom.query_instant("up", t("2026-01-01T00:00:00Z")).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, CollectorError::Timeout { timeout_ms: 300, .. }), "{err}");
    assert!(waited >= StdDuration::from_millis(290) && waited < StdDuration::from_secs(3), "{waited:?}");
    hold.abort();
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    // Called through a trait object, as the daemon holds its sources.
    let prom: Arc<dyn MetricSource> = Arc::new(source(&format!("http://{addr}"), StdDuration::from_secs(2), 11_000));
    let err =
        prom.instant(&WorkloadRef::new("shop", "frontend"), Signal::Cpu, t("2026-01-01T00:00:00Z")).await.unwrap_err();
    assert!(matches!(&err, CollectorError::Transport { url, .. } if url.contains(&addr.to_string())), "{err}");
}

#[test]
fn bad_configurations_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let with = |f: fn(&mut PrometheusConfig)| {
        let mut c = PrometheusConfig::new("http://127.0.0.1:9090");
        f(&mut c);
        PrometheusSource::new(c)
    };
    assert!(with(|_| {}).is_ok());
    for bad in [
        with(|c| c.base_url = "not a url".into()),
        with(|c| c.base_url = "ftp://host/".into()),
        with(|c| c.timeout = StdDuration::ZERO),
        with(|c| c.max_points_per_query = 0),
        with(|c| c.max_points_per_query = 11_001),
        with(|c| c.templates.cpu = " ".into()),
    ] {
        assert!(matches!(bad, Err(CollectorError::InvalidConfig(_))), "{bad:?}");
    }
}
