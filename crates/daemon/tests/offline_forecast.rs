//! Acceptance of `prescaled forecast` on the NASA July 1995 trace at the STS-70 launch morning.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests themselves.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use prescale_core::SystemClock;
use prescale_daemon::offline::{OfflineRequest, forecast};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces").join(name)
}

fn request(events: PathBuf) -> OfflineRequest {
    OfflineRequest {
        history: data("nasa-http-1995-07.per-minute.csv"),
        events: Some(events),
        at: "1995-07-13T10:00:00Z".parse().unwrap(),
        horizon: Duration::minutes(60),
        capacity_per_pod: Some(1.0),
        target_utilization: 0.7,
        startup: std::time::Duration::from_secs(180),
        min_replicas: 1,
        max_replicas: 50,
        llm: None,
    }
}

fn launch_window(t: DateTime<Utc>) -> bool {
    let start: DateTime<Utc> = "1995-07-13T10:41:55Z".parse().unwrap();
    t >= start
}

#[tokio::test]
async fn names_the_launch_and_says_its_kind_has_no_history() {
    let f = forecast(&request(data("nasa-http-1995-07.events.csv")), Arc::new(SystemClock)).await.unwrap();
    assert!(f.explanation.contains("STS-70 Discovery launch"), "{}", f.explanation);
    assert!(f.explanation.contains("`launch`") && f.explanation.contains("no history"), "{}", f.explanation);
    assert_eq!(f.steps.len(), 60);
    assert_eq!(f.steps[0].t, "1995-07-13T10:00:00Z".parse::<DateTime<Utc>>().unwrap());
    assert!(f.planned_replicas.is_some());
}

#[tokio::test]
async fn a_declared_multiplier_of_two_doubles_the_forecast_in_the_launch_window() {
    let original = std::fs::read_to_string(data("nasa-http-1995-07.events.csv")).unwrap();
    let mut lines = original.lines();
    let mut csv = format!("{},expected_multiplier\n", lines.next().unwrap());
    for line in lines {
        let multiplier = if line.contains("STS-70 Discovery launch") { "2" } else { "" };
        csv.push_str(&format!("{line},{multiplier}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.csv");
    std::fs::write(&events, csv).unwrap();
    let with = forecast(&request(events), Arc::new(SystemClock)).await.unwrap();
    let inside: Vec<_> = with.steps.iter().filter(|s| launch_window(s.t)).collect();
    assert!(inside.len() >= 15, "the launch window lies inside the horizon");
    for s in inside {
        let ratio = s.p50 / s.baseline.unwrap();
        assert!((ratio - 2.0).abs() < 0.05, "at {} p50 {} baseline {:?}", s.t, s.p50, s.baseline);
    }
    let before: Vec<_> =
        with.steps.iter().filter(|s| s.t < "1995-07-13T10:40:00Z".parse::<DateTime<Utc>>().unwrap()).collect();
    for s in before {
        assert!((s.p50 / s.baseline.unwrap() - 1.0).abs() < 1e-9, "before the window the forecast is the baseline");
    }
    assert!(with.explanation.contains("x2.00"), "{}", with.explanation);
}

#[test]
fn the_binary_prints_text_and_json() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "forecast".to_string(),
            "--history".into(),
            data("nasa-http-1995-07.per-minute.csv").display().to_string(),
            "--events".into(),
            data("nasa-http-1995-07.events.csv").display().to_string(),
            "--at".into(),
            "1995-07-13T10:00:00Z".into(),
            "--horizon".into(),
            "60m".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_prescaled")).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    assert!(text.contains("source: statistical+events"), "{text}");
    assert!(text.contains("STS-70 Discovery launch") && text.contains("has no history"), "{text}");
    assert!(text.contains("1995-07-13T10:59:00Z"), "60 steps: {text}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--json", "--capacity-per-pod", "1", "--startup", "3m", "--max", "80"])).unwrap();
    assert_eq!(json["source"], "statistical+events");
    assert!(json["explanation"].as_str().unwrap().contains("STS-70"));
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 60);
    assert!(steps[0]["t"].is_string() && steps[0]["p50"].is_number() && steps[0]["p90"].is_number());
    let planned = json["planned_replicas"].as_u64().unwrap();
    assert!((1..=80).contains(&planned), "{planned}");
}
