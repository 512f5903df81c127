//! PrometheusSource against a real Prometheus server scraping a tiny exporter.
//!
//! Needs the `prometheus` binary (`/usr/bin/prometheus`, or `PROMETHEUS_BIN`). Without it
//! the test reports that it was skipped, unless `PRESCALE_REQUIRE_PROMETHEUS=1`, which
//! turns a missing binary into a failure.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests themselves.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::{Duration, Utc};
use prescale_collector::{CollectorError, MetricSource, PrometheusConfig, PrometheusSource, Signal};
use prescale_core::WorkloadRef;

/// Requests per second the fake exporter reports for each pod.
const POD_RATES: [(&str, &str, f64); 3] =
    [("shop", "shop-frontend-abc", 100.0), ("shop", "shop-frontend-def", 50.0), ("shop", "shop-checkout-xyz", 7.0)];

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into()));
    if path.is_file() {
        return Some(path);
    }
    let why = format!("prometheus binary not found at {}", path.display());
    if std::env::var("PRESCALE_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1") {
        panic!("{why}, and PRESCALE_REQUIRE_PROMETHEUS=1 requires it");
    }
    eprintln!("SKIPPED prometheus_real: {why} (set PROMETHEUS_BIN, or install the Debian package `prometheus`)");
    None
}

/// An exporter whose counters grow at [`POD_RATES`] since it started.
async fn serve_exporter() -> std::net::SocketAddr {
    let started = Arc::new(Instant::now());
    let metrics = move || {
        let elapsed = started.elapsed().as_secs_f64();
        async move {
            let mut body = String::from("# TYPE http_requests_total counter\n");
            for (namespace, pod, rate) in POD_RATES {
                let count = (1000.0 + rate * elapsed).floor();
                body.push_str(&format!("http_requests_total{{namespace=\"{namespace}\",pod=\"{pod}\"}} {count}\n"));
            }
            ([("content-type", "text/plain; version=0.0.4")], body)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/metrics", get(metrics))).await.unwrap() });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Polls `check` every 100 ms until it yields a value or `limit` passes.
async fn wait_for<T, F, Fut>(limit: StdDuration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = check().await {
            return Some(v);
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_a_real_prometheus() {
    let Some(binary) = prometheus_binary() else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let test_started = Instant::now();

    let exporter = serve_exporter().await;
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let dir = TempDir(std::env::temp_dir().join(format!("prescale-prom-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(dir.0.join("data")).unwrap();
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: fake\n    \
             static_configs:\n      - targets: ['{exporter}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log_path = dir.0.join("prometheus.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut prometheus = tokio::process::Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(StdDuration::from_secs(2)).build().unwrap();
    let ready = wait_for(StdDuration::from_secs(15), || async {
        let r = http.get(format!("{base}/-/ready")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(ready.is_some(), "prometheus was not ready within 15 s; log:\n{}", log_tail(&log_path));
    println!("prometheus ready after {:?}", test_started.elapsed());

    // The default templates use a 1m rate window, which reads low until a minute of data
    // exists; a 5 s window settles within seconds, and shows the templates are configurable.
    let mut config = PrometheusConfig::new(&base);
    config.templates.request_rate =
        r#"sum(rate(http_requests_total{namespace="{namespace}",pod=~"{name}-.*"}[5s]))"#.into();
    let source = PrometheusSource::new(config).unwrap();
    let frontend = WorkloadRef::new("shop", "shop-frontend");
    // Counters grow at 100/s + 50/s for the frontend's two pods; checkout's 7/s is excluded.
    let expected = 120.0..=180.0;

    let settled = wait_for(StdDuration::from_secs(20), || async {
        let rate = source.instant(&frontend, Signal::RequestRate, Utc::now()).await.ok().flatten()?;
        (135.0..=165.0).contains(&rate).then_some((rate, Utc::now()))
    })
    .await;
    let (rate, stable_since) =
        settled.unwrap_or_else(|| panic!("no settled request rate within 20 s; log:\n{}", log_tail(&log_path)));
    println!("request rate {rate:.1}/s after {:?}", test_started.elapsed());
    tokio::time::sleep(StdDuration::from_secs(3)).await;

    // A short range on a 1 s grid since the rate settled: every point carries the frontend's rate.
    let now = Utc::now();
    let recent = source.range(&frontend, Signal::RequestRate, stable_since, now, Duration::seconds(1)).await.unwrap();
    assert_eq!(recent.step_secs(), 1);
    assert!(recent.start() <= stable_since && recent.end() <= now, "{:?}..{:?}", recent.start(), recent.end());
    assert!(now - recent.end() < Duration::seconds(1), "the last complete point is left out");
    let present: Vec<f64> = recent.values().iter().flatten().copied().collect();
    assert!(present.len() == recent.len() && present.len() >= 3, "{:?}", recent.values());
    assert!(present.iter().all(|v| expected.contains(v)), "{present:?}");

    // Before Prometheus started there is no data: those points are missing, not zero.
    let before_start = Utc::now() - Duration::from_std(test_started.elapsed()).unwrap() - Duration::seconds(10);
    let since_before =
        source.range(&frontend, Signal::RequestRate, before_start, now, Duration::seconds(1)).await.unwrap();
    assert!(since_before.values()[..10].iter().all(Option::is_none), "{:?}", since_before.values());
    assert!(since_before.values().iter().any(Option::is_some));

    // Four hours at 1 s is 14,400 points: more than Prometheus serves in one call.
    let (start, end) = ((now - Duration::hours(4)).timestamp(), now.timestamp());
    let raw =
        http.get(format!("{base}/api/v1/query_range?query=up&start={start}&end={end}&step=1")).send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert!(raw.text().await.unwrap().contains("11,000"));
    let split_started = Instant::now();
    let long = source
        .range(&frontend, Signal::RequestRate, now - Duration::hours(4), now, Duration::seconds(1))
        .await
        .unwrap();
    println!("4 h at 1 s ({} points) in {:?}", long.len(), split_started.elapsed());
    assert_eq!(long.len(), 14_400);
    assert!(long.values()[..11_000].iter().all(Option::is_none), "the first window predates the server");
    let tail_present = long.values()[long.len() - 20..].iter().flatten().count();
    assert!(tail_present >= 3, "{:?}", &long.values()[long.len() - 20..]);
    // The split answer agrees with the short one on the points they share.
    for i in 0..recent.len() {
        let t = recent.timestamp(i);
        if let (Some(a), Some(b)) = (recent.values()[i], long.value_at(t)) {
            assert!((a - b).abs() < 1e-9, "at {t}: {a} vs {b}");
        }
    }

    // NaN from the real server becomes a missing point.
    assert_eq!(source.query_instant("0/0", now).await.unwrap(), None);
    let nan_range = source.query_range("0/0", now - Duration::seconds(5), now, Duration::seconds(1)).await.unwrap();
    assert!(nan_range.values().iter().all(Option::is_none), "{:?}", nan_range.values());

    // Malformed PromQL is a typed query error.
    let err = source.query_instant("sum(rate(http_requests_total[1m]", now).await.unwrap_err();
    assert!(matches!(&err, CollectorError::Query { error_type, .. } if error_type == "bad_data"), "{err}");
    let err = source.query_range("rate(", now - Duration::minutes(1), now, Duration::seconds(1)).await.unwrap_err();
    assert!(matches!(&err, CollectorError::Query { .. }), "{err}");

    // A workload that nobody exports is an empty result, not a series of zeros.
    let ghost = WorkloadRef::new("shop", "ghost");
    let err = source
        .range(&ghost, Signal::RequestRate, now - Duration::minutes(1), now, Duration::seconds(1))
        .await
        .unwrap_err();
    assert!(matches!(err, CollectorError::EmptyResult { .. }), "{err}");
    let err = source.instant(&ghost, Signal::RequestRate, now).await.unwrap_err();
    assert!(matches!(err, CollectorError::EmptyResult { .. }), "{err}");

    prometheus.kill().await.unwrap();
    println!("real Prometheus test took {:?}", test_started.elapsed());
    assert!(test_started.elapsed() < StdDuration::from_secs(30));
}
