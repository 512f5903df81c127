//! The seed scenario end to end: the embedded cluster, the daemon in process with its real kube
//! client and pod-scrape metrics, the open-loop load, for `prescale`, `hpa` and
//! `prescale-floor` on the short timeline at a low request rate (about a minute of wall time).
//!
//! One test in this binary, so nothing else competes with the load for the CPU.

use std::time::Duration;

use prescale_cluster::PodConfig;
use prescale_harness::scenario::{Policy, ScenarioOptions, TimelineKind, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prescale_scales_before_the_surge_the_hpa_after_it_and_the_floor_is_restored() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut options = ScenarioOptions::new(dir.path());
    options.policies = vec![Policy::Prescale, Policy::Hpa, Policy::PrescaleFloor];
    options.timeline = TimelineKind::Short;
    options.time_scale = 60.0;
    // 30 requests/s on pods of 20 requests/s: 3 pods at the baseline, 6 needed at the 4x peak.
    options.baseline_rps = 30.0;
    options.pod =
        PodConfig { workers: 1, service_time: Duration::from_millis(50), queue_capacity: 32, ..options.pod.clone() };
    options.progress = false;
    let outcome = run(&options).await.unwrap();
    let report = &outcome.report;
    let summary = format!("{}\n{:#?}\n{:#?}", outcome.table, report.verdict, outcome.notes);
    assert_eq!(report.runs.len(), 3, "{summary}");
    assert!(report.verdict.passed, "{summary}");
    assert_eq!(report.verdict.checks.len(), 8, "four checks per prescale run: {summary}");

    let run_of = |policy: &str| report.runs.iter().find(|r| r.policy == policy).unwrap();
    let (prescale, hpa, floor) = (run_of("prescale"), run_of("hpa"), run_of("prescale-floor"));
    assert_eq!(prescale.predictor.as_deref(), Some("statistical+events"));
    assert!(hpa.predictor.is_none() && hpa.trigger_s.is_none(), "no daemon in the hpa run");
    // prescale was ready before the surge; the reactive HPA only after it started.
    assert!(prescale.lead_s.unwrap() >= 60.0, "{summary}");
    assert!(prescale.scale_up_started_s.unwrap() < prescale.surge_start_s, "{summary}");
    assert!(hpa.scale_up_started_s.is_none_or(|s| s > hpa.surge_start_s), "{summary}");
    assert!(hpa.lead_s.is_none_or(|l| l < 0.0), "{summary}");
    assert!(hpa.slo_violation_s > prescale.slo_violation_s, "{summary}");

    // prescale-floor raised the HPA's floor before the surge and gave the user's floor back after it.
    let notes = &outcome.notes[2];
    let original = notes.original_floor.unwrap();
    let (raised_at, raised_to) = notes.floor_raised.expect("the floor was raised");
    assert!(raised_to > original && raised_at < floor.surge_start_s, "{summary}");
    let restored = notes.floor_restored_s.expect("the floor was restored");
    assert!(restored > floor.surge_end_s, "{summary}");
    assert_eq!(floor.final_replicas, floor.baseline_replicas, "{summary}");

    // The report's files, with the fields.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let fields = [
        "policy",
        "predictor",
        "trigger_s",
        "surge_start_s",
        "surge_end_s",
        "scale_up_started_s",
        "scale_up_ready_s",
        "lead_s",
        "baseline_replicas",
        "peak_replicas",
        "final_replicas",
        "scale_down_started_s",
        "scale_down_done_s",
        "surge_latency_ms",
        "surge_error_rate",
        "requests",
        "slo_violation_s",
        "replica_seconds",
        "cpu_utilization",
        "memory_utilization",
        "llm",
        "timeline",
    ];
    let run0 = json["runs"][0].as_object().unwrap();
    assert_eq!(run0.len(), fields.len(), "{:?}", run0.keys().collect::<Vec<_>>());
    for f in fields {
        assert!(run0.contains_key(f), "missing {f}");
    }
    assert_eq!(json["runs"][0]["timeline"].as_array().unwrap().len(), 84, "one row per 10 s of 14 minutes");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("Proactive scaling") && md.contains("Side by side"), "{md}");
    let svg = std::fs::read_to_string(dir.path().join("report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("prescale-floor: replicas"));
}
