//! `prescaled check-config`: the documented example is accepted; a file with three mistakes
//! gets all three reported with their key paths and a non-zero exit; environment overrides
//! apply; every kind of problem names its key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use prescale_daemon::DaemonError;
use prescale_daemon::config::{self, KubernetesConnection, MetricsSource, Mode, Setting};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn prescaled(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prescaled")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_documented_example_is_accepted() {
    let example = repo("deploy/config.example.yaml");
    let (code, text) = prescaled(&["check-config", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK (1 workload(s))"), "{text}");
    let config = config::load_with_env(&example, Some(BTreeMap::new())).unwrap();
    assert_eq!(config.tick_interval, Duration::from_secs(30));
    assert_eq!(config.workloads[0].mode, Mode::ForecastOnly);
    assert_eq!(config.workloads[0].startup, Setting::Auto);
    assert!(config.leader_election.enabled);
    // The ConfigMap in deploy/ carries the same kind of file; it must be valid too.
    let manifest = std::fs::read_to_string(repo("deploy/configmap.yaml")).unwrap();
    let embedded = manifest.split("config.yaml: |\n").nth(1).expect("config.yaml key in the ConfigMap");
    let embedded = embedded.split("\n---").next().unwrap();
    let body: String = embedded.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, body).unwrap();
    let (code, text) = prescaled(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn three_mistakes_are_all_reported_with_their_key_paths() {
    let file = repo("crates/daemon/tests/data/three-mistakes.yaml");
    let (code, text) = prescaled(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");
    for needle in [
        "tick_interval: invalid duration \"30 seconds and a bit\"",
        "workloads[0].mode: unknown value \"agressive\", expected one of forecast-only, hpa-floor, direct",
        "workloads[0].target_utilization: must be in (0, 1], got 1.5",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    // The daemon refuses to start on it, with the same list.
    let (code, text) = prescaled(&["run", "--config", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(text.contains("workloads[0].mode"), "{text}");
}

#[test]
fn every_kind_of_problem_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        r#"
tick_interval: 0s
concurrency: 1000
colour: blue
api: { listen: "localhost", token_file: /t, token_env: T }
metrics: { source: prometheus, scrape_port: 9 }
leader_election: { lease_duration: 10s, renew_interval: 8s }
llm: { endpoint: "ftp://x" }
workloads:
  - { namespace: Shop, name: web, max_replicas: 3, min_replicas: 5, capacity_per_pod: -1, predictor: llm,
      startup: soon, signals: { qps: "x" }, events: [1] }
  - { namespace: shop, name: web, max_replicas: 3, capacity_per_pod: auto, tolerance: 1.5, scale_down_cooldown: soon }
  - { namespace: shop, name: web, max_replicas: 3, capacity_per_pod: auto }
"#,
    )
    .unwrap();
    let err = config::load_with_env(&file, Some(BTreeMap::new())).unwrap_err();
    let DaemonError::InvalidConfig { problems, .. } = err else { panic!("{err}") };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for field in [
        "tick_interval",
        "concurrency",
        "colour",
        "api.listen",
        "api.token_env",
        "metrics.prometheus_url",
        "metrics.scrape_port",
        "leader_election.renew_interval",
        "llm.endpoint",
        "llm.model",
        "workloads[0].namespace",
        "workloads[0].min_replicas",
        "workloads[0].capacity_per_pod",
        "workloads[0].startup",
        "workloads[0].signals.qps",
        "workloads[0].events[0]",
        "workloads[1].tolerance",
        "workloads[1].scale_down_cooldown",
        "workloads[2]",
    ] {
        assert!(fields.contains(&field), "{field} not reported; got {problems:#?}");
    }
}

#[test]
fn environment_variables_override_the_file() {
    let example = repo("deploy/config.example.yaml");
    let env: BTreeMap<String, String> = [
        ("PRESCALE__TICK_INTERVAL".to_string(), "10s".to_string()),
        ("PRESCALE__KUBERNETES__CONNECTION".to_string(), "in-cluster".to_string()),
        ("PRESCALE__LEADER_ELECTION__ENABLED".to_string(), "false".to_string()),
    ]
    .into();
    let config = config::load_with_env(&example, Some(env)).unwrap();
    assert_eq!(config.tick_interval, Duration::from_secs(10));
    assert_eq!(config.kubernetes, KubernetesConnection::InCluster);
    assert!(!config.leader_election.enabled);
    assert!(matches!(config.metrics.source, MetricsSource::Prometheus { .. }));
}
