//! The file sources on the real traces and calendars shipped in `data/traces`.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap, like the tests themselves.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use prescale_collector::{Aggregate, CsvHistory, EventCalendar, EventSource, MetricSource, Signal};
use prescale_core::WorkloadRef;

fn trace(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/traces").join(name)
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn nasa_per_minute_reads_and_resamples() {
    let started = Instant::now();
    let h = CsvHistory::from_path(trace("nasa-http-1995-07.per-minute.csv")).unwrap();
    println!("nasa: read in {:?}", started.elapsed());
    assert_eq!(h.columns(), ["requests"]);
    assert_eq!(h.step(), Duration::minutes(1));
    assert_eq!(h.start(), t("1995-07-01T04:00:00Z"));
    let minutes = h.series("requests", Duration::minutes(1), Aggregate::Sum).unwrap();
    let rows = 39_692;
    assert_eq!(minutes.len() - minutes.missing(), rows);
    println!("nasa: {} minutes on the grid, {} missing", minutes.len(), minutes.missing());
    // The first row of the file: 1995-07-01T04:00:00Z,42.
    assert_eq!(minutes.values()[0], Some(42.0));

    let hours = h.series("requests", Duration::hours(1), Aggregate::Sum).unwrap();
    assert_eq!(hours.start(), t("1995-07-01T04:00:00Z"));
    // Every complete hour equals the sum of its 60 minutes.
    for (i, v) in hours.values().iter().enumerate() {
        let slice = &minutes.values()[i * 60..(i + 1) * 60];
        let expected = slice.iter().copied().collect::<Option<Vec<f64>>>().map(|m| m.iter().sum::<f64>());
        assert_eq!(*v, expected, "hour {i}");
    }
    assert!(matches!(
        h.series("requests", Duration::seconds(30), Aggregate::Sum),
        Err(prescale_collector::CollectorError::Resample { .. })
    ));
}

#[test]
fn nab_keeps_its_offset_grid_and_eight_gaps() {
    let h = CsvHistory::from_path(trace("nab-aws-elb-request-count-8c0756.per-5min.csv")).unwrap();
    assert_eq!(h.step(), Duration::minutes(5));
    let native = h.series("requests", Duration::minutes(5), Aggregate::Sum).unwrap();
    assert_eq!(native.start(), t("2014-04-10T00:04:00Z"));
    assert_eq!(native.missing(), 8, "the README lists 8 missing intervals");
    assert_eq!(native.len() - native.missing(), 4032);
    let quarter = h.series("requests", Duration::minutes(15), Aggregate::Sum).unwrap();
    assert_eq!(quarter.start().timestamp() % 900, 240, "15-minute points keep the file's :04 phase");
    assert!(quarter.missing() >= 1 && quarter.missing() <= 8, "{}", quarter.missing());
}

#[tokio::test]
async fn history_as_metric_source_gives_requests_per_second() {
    let h = CsvHistory::from_path(trace("nasa-http-1995-07.per-minute.csv")).unwrap();
    let w = WorkloadRef::new("nasa", "www");
    let from = t("1995-07-13T08:00:00Z");
    let rate = h.range(&w, Signal::RequestRate, from, from + Duration::hours(6), Duration::minutes(5)).await.unwrap();
    let counts = h.series("requests", Duration::minutes(5), Aggregate::Sum).unwrap();
    assert_eq!(rate.len(), 72);
    for i in 0..rate.len() {
        let ts = rate.timestamp(i);
        assert_eq!(rate.values()[i], counts.value_at(ts).map(|c| c / 300.0), "at {ts}");
    }
}

#[tokio::test]
async fn shipped_calendars_load_with_derived_ids() {
    let nasa = EventCalendar::from_path(trace("nasa-http-1995-07.events.csv")).unwrap();
    assert_eq!(nasa.all().len(), 6);
    assert!(nasa.all().iter().any(|e| e.id == "sts-70-discovery-launch-19950713t1041"));
    let cup = EventCalendar::from_path(trace("worldcup98-1998-04-30_06-26.events.csv")).unwrap();
    assert_eq!(cup.all().len(), 50);
    assert_eq!(cup.all().iter().filter(|e| e.kind == "match-group").count(), 48);
    let w = WorkloadRef::new("fifa", "www");
    let day = cup.events(&w, t("1998-06-10T00:00:00Z"), t("1998-06-11T00:00:00Z")).await.unwrap();
    assert_eq!(day.first().map(|e| e.name.as_str()), Some("Opening ceremony, Stade de France"));
    assert!(day.windows(2).all(|p| p[0].start <= p[1].start));
}
