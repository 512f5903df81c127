//! The seed scenario's `--prometheus` mode: a real Prometheus (Debian's `prometheus` binary)
//! scrapes the pods and the daemon reads the request rate from it, in real time on the short
//! timeline (about 15 minutes of wall time). Because it takes that long, it runs only when
//! `PRESCALE_REQUIRE_PROMETHEUS=1` (as in CI: a missing binary then fails the test) or
//! `PRESCALE_SCENARIO_PROMETHEUS=1`; otherwise it prints that it was skipped and why.

use std::time::Duration;

use prescale_cluster::PodConfig;
use prescale_harness::scenario::{Policy, ScenarioOptions, TimelineKind, run};

fn prometheus_binary() -> Option<std::path::PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("prometheus")).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.into_iter().chain([std::path::PathBuf::from("/usr/bin/prometheus")]).find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prescale_reads_a_real_prometheus_and_scales_before_the_surge() {
    let wanted = |var: &str| std::env::var(var).as_deref() == Ok("1");
    if !wanted("PRESCALE_REQUIRE_PROMETHEUS") && !wanted("PRESCALE_SCENARIO_PROMETHEUS") {
        eprintln!(
            "skipped: the real-time Prometheus scenario takes about 15 minutes; \
             set PRESCALE_SCENARIO_PROMETHEUS=1 to run it (CI sets PRESCALE_REQUIRE_PROMETHEUS=1)"
        );
        return;
    }
    let Some(binary) = prometheus_binary() else {
        assert!(
            std::env::var("PRESCALE_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
            "PRESCALE_REQUIRE_PROMETHEUS=1 but no prometheus binary on PATH or at /usr/bin/prometheus"
        );
        eprintln!("skipped: no prometheus binary (apt-get install prometheus)");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ScenarioOptions::new(dir.path());
    options.policies = vec![Policy::Prescale];
    options.timeline = TimelineKind::Short;
    options.time_scale = 1.0;
    options.prometheus = Some(binary);
    options.baseline_rps = 30.0;
    options.pod =
        PodConfig { workers: 1, service_time: Duration::from_millis(50), queue_capacity: 32, ..options.pod.clone() };
    options.progress = false;
    let outcome = run(&options).await.unwrap();
    let summary = format!("{}\n{:#?}\n{:#?}", outcome.table, outcome.report.verdict, outcome.notes);
    assert!(outcome.report.verdict.passed, "{summary}");
    let prescale = &outcome.report.runs[0];
    assert!(prescale.lead_s.unwrap() >= 60.0, "{summary}");
    // Once Prometheus had a minute of samples, the daemon never missed its metrics.
    let missing: Vec<_> = outcome.notes[0]
        .daemon_errors
        .iter()
        .filter(|(t_s, e)| *t_s > 60.0 && (e.contains("metric") || e.contains("request-rate")))
        .collect();
    assert!(missing.is_empty(), "{missing:?}\n{summary}");
    assert!(dir.path().join("prescale/prometheus/prometheus.yml").is_file());
}
