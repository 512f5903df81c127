//! The load generator against real HTTP servers on loopback: rate, latency, timeouts, open loop.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prescale_harness::load::{LoadConfig, LoadGenerator, RateSchedule, Segment};
use tokio::sync::watch;
use tokio::time::Instant;

/// A server that answers after `delay`, with `status`, counting requests.
async fn server(delay: Duration, status: StatusCode) -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/",
            get(move |State(hits): State<Arc<AtomicU64>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                (status, "hello")
            }),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), hits)
}

fn segment(phase: &str, start_s: f64, end_s: f64, rps: f64) -> Segment {
    Segment { phase: phase.into(), start_s, end_s, from_rps: rps, to_rps: rps }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_the_scheduled_rate_and_measures_the_server_latency() {
    let (url, hits) = server(Duration::from_millis(20), StatusCode::OK).await;
    let schedule = RateSchedule::new(vec![segment("low", 0.0, 1.0, 100.0), segment("high", 1.0, 2.0, 300.0)]).unwrap();
    let generator = LoadGenerator::new(LoadConfig { window_s: 1.0, ..LoadConfig::new(url) }, schedule).unwrap();
    let (_tx, rx) = watch::channel(false);
    generator.run(Instant::now(), rx).await.unwrap();
    let rec = generator.recorder();
    let total = rec.total();
    // 100 + 300 requests are due; the last may round either way.
    assert!((398..=401).contains(&total.sent), "sent {}", total.sent);
    assert_eq!(hits.load(Ordering::SeqCst), total.sent);
    assert_eq!(total.ok, total.sent);
    let phases = rec.phases();
    assert!((99..=101).contains(&phases["low"].sent), "{}", phases["low"].sent);
    assert!((298..=301).contains(&phases["high"].sent), "{}", phases["high"].sent);
    let s = total.summary();
    assert!(s.p50 >= 20.0 && s.p50 < 40.0, "p50 {} ms", s.p50);
    assert_eq!(rec.windows().len(), 2);
    assert_eq!(rec.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_do_not_slow_the_sending_and_time_out_as_errors() {
    // Every response takes longer than the timeout: a closed-loop client would send one
    // request per timeout; an open-loop one keeps the schedule.
    let (url, hits) = server(Duration::from_millis(600), StatusCode::OK).await;
    let schedule = RateSchedule::constant("steady", 50.0, 1.0).unwrap();
    let config = LoadConfig { timeout: Duration::from_millis(200), ..LoadConfig::new(url) };
    let generator = LoadGenerator::new(config, schedule).unwrap();
    let (_tx, rx) = watch::channel(false);
    let started = Instant::now();
    generator.run(Instant::now(), rx).await.unwrap();
    let elapsed = started.elapsed();
    let total = generator.recorder().total();
    assert!((49..=51).contains(&total.sent), "sent {}", total.sent);
    assert_eq!(total.timeouts, total.sent);
    assert_eq!(total.ok, 0);
    assert_eq!(total.error_rate(), 1.0);
    assert!(hits.load(Ordering::SeqCst) >= 49);
    // One schedule second plus at most one timeout for the last requests.
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_and_refused_connections_count_as_errors() {
    let (url, _) = server(Duration::ZERO, StatusCode::SERVICE_UNAVAILABLE).await;
    let generator = LoadGenerator::new(LoadConfig::new(url), RateSchedule::constant("s", 40.0, 0.5).unwrap()).unwrap();
    let (_tx, rx) = watch::channel(false);
    generator.run(Instant::now(), rx).await.unwrap();
    let total = generator.recorder().total();
    assert_eq!(total.status_errors, total.sent);
    assert!(total.sent >= 19);

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let generator = LoadGenerator::new(
        LoadConfig::new(format!("http://127.0.0.1:{port}/")),
        RateSchedule::constant("s", 40.0, 0.5).unwrap(),
    )
    .unwrap();
    let (_tx, rx) = watch::channel(false);
    generator.run(Instant::now(), rx).await.unwrap();
    let total = generator.recorder().total();
    assert_eq!(total.connection_errors, total.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_scale_compresses_scenario_time_but_not_the_rate() {
    let (url, _) = server(Duration::ZERO, StatusCode::OK).await;
    // 60 scenario seconds at 60x take one wall second at 100 requests per wall second.
    let schedule = RateSchedule::constant("baseline", 100.0, 60.0).unwrap();
    let config = LoadConfig { time_scale: 60.0, ..LoadConfig::new(url) };
    let generator = LoadGenerator::new(config, schedule).unwrap();
    let (_tx, rx) = watch::channel(false);
    let started = Instant::now();
    generator.run(Instant::now(), rx).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500));
    let rec = generator.recorder();
    assert!((99..=101).contains(&rec.total().sent), "{}", rec.total().sent);
    // Six 10-second scenario windows of about 100/6 requests each.
    let windows = rec.windows();
    assert_eq!(windows.len(), 6);
    assert!(
        windows.iter().all(|w| (15..=18).contains(&w.tally.sent)),
        "{:?}",
        windows.iter().map(|w| w.tally.sent).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_the_run_early() {
    let (url, _) = server(Duration::ZERO, StatusCode::OK).await;
    let generator = LoadGenerator::new(LoadConfig::new(url), RateSchedule::constant("s", 20.0, 30.0).unwrap()).unwrap();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send_replace(true);
    });
    let started = Instant::now();
    generator.run(Instant::now(), rx).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(generator.recorder().total().sent <= 10);
}

#[test]
fn bad_settings_are_rejected() {
    let schedule = RateSchedule::constant("s", 1.0, 1.0).unwrap();
    assert!(LoadGenerator::new(LoadConfig::new("https://example.com/"), schedule.clone()).is_err());
    assert!(LoadGenerator::new(LoadConfig::new("not a url"), schedule.clone()).is_err());
    let config = LoadConfig { time_scale: 0.0, ..LoadConfig::new("http://127.0.0.1:1/") };
    assert!(LoadGenerator::new(config, schedule).is_err());
}
