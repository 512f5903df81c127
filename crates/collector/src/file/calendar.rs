//! Event calendars from CSV or YAML files.
//!
//! CSV: a header naming `start,end,name,kind` and optionally `id`, `description` and
//! `expected_multiplier`, in any order; times are RFC 3339. YAML: a list of events in the
//! shape of [`ScheduledEvent`], either at the top level or under an `events:` key.
//! In both, a missing or empty `id` is derived with [`ScheduledEvent::derive_id`].
//! Every event is validated; ids must be unique within a calendar.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prescale_core::{ScheduledEvent, WorkloadRef};
use serde::Deserialize;

use super::history::csv_error;
use super::parse_timestamp;
use crate::source::{overlaps, sort_events};
use crate::{CollectorError, EventSource};

/// A fixed list of scheduled events, read from a file.
///
/// As an [`EventSource`] it answers with its events for any workload: a calendar file
/// belongs to the workload it was configured for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventCalendar {
    events: Vec<ScheduledEvent>,
}

const REQUIRED_COLUMNS: [&str; 4] = ["start", "end", "name", "kind"];
const OPTIONAL_COLUMNS: [&str; 3] = ["id", "description", "expected_multiplier"];

impl EventCalendar {
    /// Reads a calendar file: `.csv` as CSV, `.yaml` or `.yml` as YAML.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, CollectorError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source| CollectorError::Io { path: path.to_path_buf(), source };
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Self::from_csv_reader(std::fs::File::open(path).map_err(io)?, &name),
            Some("yaml" | "yml") => Self::from_yaml_str(&std::fs::read_to_string(path).map_err(io)?, &name),
            _ => Err(CollectorError::BadCalendar {
                file: name,
                location: "file name".into(),
                message: "a calendar must end in .csv, .yaml or .yml".into(),
            }),
        }
    }

    /// Reads a CSV calendar from `reader`; `name` stands for the file in error messages.
    pub fn from_csv_reader(reader: impl Read, name: &str) -> Result<Self, CollectorError> {
        let mut csv = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(reader);
        let header: Vec<String> =
            csv.headers().map_err(|e| csv_error(name, &[], e))?.iter().map(String::from).collect();
        let bad = |line: u64, column: &str, message: String| CollectorError::BadRow {
            file: name.to_string(),
            line,
            column: column.to_string(),
            message,
        };
        let mut index = HashMap::new();
        for (i, column) in header.iter().enumerate() {
            if !REQUIRED_COLUMNS.contains(&column.as_str()) && !OPTIONAL_COLUMNS.contains(&column.as_str()) {
                return Err(bad(
                    1,
                    column,
                    format!(
                        "unknown column; expected {} and optionally {}",
                        REQUIRED_COLUMNS.join(","),
                        OPTIONAL_COLUMNS.join(",")
                    ),
                ));
            }
            if index.insert(column.as_str(), i).is_some() {
                return Err(bad(1, column, "column appears twice in the header".into()));
            }
        }
        if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !index.contains_key(*c)) {
            return Err(bad(1, missing, format!("the header lacks the required `{missing}` column")));
        }

        let mut lines = Vec::new();
        let mut events = Vec::new();
        for record in csv.records() {
            let record = record.map_err(|e| csv_error(name, &header, e))?;
            let line = record.position().map(csv::Position::line).unwrap_or(0);
            let cell = |column: &str| index.get(column).map(|i| &record[*i]).filter(|t| !t.is_empty());
            let time =
                |column: &str| parse_timestamp(cell(column).unwrap_or_default()).map_err(|m| bad(line, column, m));
            let (start, end) = (time("start")?, time("end")?);
            let expected_multiplier = cell("expected_multiplier")
                .map(|t| {
                    t.parse::<f64>().map_err(|_| bad(line, "expected_multiplier", format!("{t:?} is not a number")))
                })
                .transpose()?;
            let event_name = cell("name").unwrap_or_default().to_string();
            let event = ScheduledEvent {
                id: cell("id").map_or_else(|| ScheduledEvent::derive_id(&event_name, start), String::from),
                name: event_name,
                kind: cell("kind").unwrap_or_default().to_string(),
                start,
                end,
                description: cell("description").map(String::from),
                expected_multiplier,
            };
            if let Err(problems) = event.validate() {
                let columns: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
                let messages: Vec<String> = problems.iter().map(|p| p.problem.clone()).collect();
                return Err(bad(line, &columns.join(", "), messages.join("; ")));
            }
            if let Some(first) = events.iter().position(|e: &ScheduledEvent| e.id == event.id) {
                return Err(bad(line, "id", format!("duplicate id {:?} (first on line {})", event.id, lines[first])));
            }
            lines.push(line);
            events.push(event);
        }
        Ok(Self::sorted(events))
    }

    /// Reads a YAML calendar; `name` stands for the file in error messages.
    pub fn from_yaml_str(text: &str, name: &str) -> Result<Self, CollectorError> {
        let yaml_error = |e: serde_yaml_ng::Error| {
            let location = e.location().map(|l| format!("line {} column {}", l.line(), l.column()));
            let mut message = e.to_string();
            if let Some(at) = &location {
                message = message.trim_end_matches(&format!(" at {at}")).to_string();
            }
            CollectorError::BadCalendar {
                file: name.to_string(),
                location: location.unwrap_or_else(|| "document".into()),
                message,
            }
        };
        let shape: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(yaml_error)?;
        let entries: Vec<YamlEvent> = match shape {
            serde_yaml_ng::Value::Null => Vec::new(),
            serde_yaml_ng::Value::Sequence(_) => serde_yaml_ng::from_str(text).map_err(yaml_error)?,
            serde_yaml_ng::Value::Mapping(_) => {
                serde_yaml_ng::from_str::<YamlCalendar>(text).map_err(yaml_error)?.events
            }
            _ => {
                return Err(CollectorError::BadCalendar {
                    file: name.to_string(),
                    location: "document".into(),
                    message: "expected a list of events or a mapping with an `events:` list".into(),
                });
            }
        };
        let mut events: Vec<ScheduledEvent> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let event = entry.into_event();
            let bad = |message: String| CollectorError::BadCalendar {
                file: name.to_string(),
                location: format!("events[{i}] (id {:?})", event.id),
                message,
            };
            if let Err(problems) = event.validate() {
                let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
                return Err(bad(text.join("; ")));
            }
            if let Some(first) = events.iter().position(|e| e.id == event.id) {
                return Err(bad(format!("duplicate id (first at events[{first}])")));
            }
            events.push(event);
        }
        Ok(Self::sorted(events))
    }

    /// Every event of the calendar, ordered by start, then id.
    pub fn all(&self) -> &[ScheduledEvent] {
        &self.events
    }

    fn sorted(mut events: Vec<ScheduledEvent>) -> Self {
        sort_events(&mut events);
        Self { events }
    }
}

#[async_trait]
impl EventSource for EventCalendar {
    async fn events(
        &self,
        _workload: &WorkloadRef,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ScheduledEvent>, CollectorError> {
        Ok(self.events.iter().filter(|e| overlaps(e, from, to)).cloned().collect())
    }
}

/// A YAML calendar under an `events:` key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlCalendar {
    events: Vec<YamlEvent>,
}

/// A [`ScheduledEvent`] whose id may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlEvent {
    #[serde(default)]
    id: Option<String>,
    name: String,
    kind: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    expected_multiplier: Option<f64>,
}

impl YamlEvent {
    fn into_event(self) -> ScheduledEvent {
        let id = self
            .id
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| ScheduledEvent::derive_id(&self.name, self.start));
        ScheduledEvent {
            id,
            name: self.name,
            kind: self.kind,
            start: self.start,
            end: self.end,
            description: self.description.filter(|d| !d.is_empty()),
            expected_multiplier: self.expected_multiplier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn bad_row(err: CollectorError) -> (u64, String, String) {
        match err {
            CollectorError::BadRow { line, column, message, .. } => (line, column, message),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn csv_with_optional_columns_and_derived_ids() {
        let text = "start,end,name,kind,description,expected_multiplier\n\
            2026-03-01T14:00:00Z,2026-03-01T15:00:00Z,Spring campaign,marketing-campaign,\"Email, 2M recipients\",3\n\
            2026-02-01T10:00:00Z,2026-02-01T11:00:00Z,Launch,launch,,\n";
        let cal = EventCalendar::from_csv_reader(text.as_bytes(), "c.csv").unwrap();
        let e = cal.all();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].id, "launch-20260201t1000");
        assert_eq!(e[0].description, None);
        assert_eq!(e[0].expected_multiplier, None);
        assert_eq!(e[1].id, "spring-campaign-20260301t1400");
        assert_eq!(e[1].description.as_deref(), Some("Email, 2M recipients"));
        assert_eq!(e[1].expected_multiplier, Some(3.0));
    }

    #[test]
    fn csv_id_column_is_used_and_columns_may_be_reordered() {
        let text = "kind,name,id,end,start\nmatch,Final,final-1,2026-07-19T21:00:00Z,2026-07-19T19:00:00Z\n";
        let cal = EventCalendar::from_csv_reader(text.as_bytes(), "c.csv").unwrap();
        assert_eq!(cal.all()[0].id, "final-1");
        assert_eq!(cal.all()[0].start, t("2026-07-19T19:00:00Z"));
    }

    #[test]
    fn csv_bad_rows_name_line_and_column() {
        let head = "start,end,name,kind,expected_multiplier\n";
        let ok = "2026-03-01T14:00:00Z,2026-03-01T15:00:00Z,A,launch,\n";
        let cases = [
            (format!("{head}{ok}2026-03-01,2026-03-01T15:00:00Z,B,launch,\n"), 3, "start"),
            (format!("{head}{ok}2026-03-01T16:00:00Z,2026-03-01T15:00:00Z,B,launch,\n"), 3, "end"),
            (format!("{head}{ok}2026-03-01T14:00:00Z,2026-03-01T15:00:00Z,B,launch,lots\n"), 3, "expected_multiplier"),
            (format!("{head}{ok}2026-03-01T14:00:00Z,2026-03-01T15:00:00Z,B,no kind!,\n"), 3, "kind"),
            (format!("{head}{ok}{ok}"), 3, "id"),
            ("start,end,name\n".to_string(), 1, "kind"),
            ("start,end,name,kind,replicas\n".to_string(), 1, "replicas"),
        ];
        for (text, line, column) in cases {
            let (l, c, m) = bad_row(EventCalendar::from_csv_reader(text.as_bytes(), "c.csv").unwrap_err());
            assert_eq!((l, c.as_str()), (line, column), "{m}");
        }
    }

    #[test]
    fn yaml_list_and_events_key_read_the_same() {
        let list = "- id: spring\n  name: Spring campaign\n  kind: marketing-campaign\n  start: 2026-03-01T14:00:00Z\n  \
                    end: 2026-03-01T15:00:00Z\n  expected_multiplier: 3.0\n- name: Launch\n  kind: launch\n  \
                    start: 2026-02-01T10:00:00Z\n  end: 2026-02-01T11:00:00Z\n  description: big one\n";
        let a = EventCalendar::from_yaml_str(list, "c.yaml").unwrap();
        let indented: String = list.lines().map(|l| format!("  {l}\n")).collect();
        let b = EventCalendar::from_yaml_str(&format!("events:\n{indented}"), "c.yaml").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.all().iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["launch-20260201t1000", "spring"]);
        assert_eq!(a.all()[1].expected_multiplier, Some(3.0));
        assert_eq!(EventCalendar::from_yaml_str("", "c.yaml").unwrap().all().len(), 0);
    }

    #[test]
    fn yaml_errors_name_the_place() {
        let typo =
            "- name: A\n  kind: launch\n  start: 2026-02-01T10:00:00Z\n  end: 2026-02-01T11:00:00Z\n  replicas: 9\n";
        match EventCalendar::from_yaml_str(typo, "c.yaml").unwrap_err() {
            CollectorError::BadCalendar { location, message, .. } => {
                assert!(location.starts_with("line 5"), "{location}");
                assert!(message.contains("replicas"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let backwards =
            "events:\n- name: A\n  kind: launch\n  start: 2026-02-01T12:00:00Z\n  end: 2026-02-01T11:00:00Z\n";
        match EventCalendar::from_yaml_str(backwards, "c.yaml").unwrap_err() {
            CollectorError::BadCalendar { location, message, .. } => {
                assert!(location.starts_with("events[0]"), "{location}");
                assert!(message.contains("end: must be after start"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(EventCalendar::from_yaml_str("42", "c.yaml"), Err(CollectorError::BadCalendar { .. })));
    }

    #[tokio::test]
    async fn event_source_returns_overlapping_events() {
        let text = "start,end,name,kind\n2026-01-01T10:00:00Z,2026-01-01T11:00:00Z,A,k\n\
                    2026-01-01T12:00:00Z,2026-01-01T13:00:00Z,B,k\n";
        let cal = EventCalendar::from_csv_reader(text.as_bytes(), "c.csv").unwrap();
        let w = WorkloadRef::new("a", "b");
        let names = |v: Vec<ScheduledEvent>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(names(cal.events(&w, t("2026-01-01T10:30:00Z"), t("2026-01-01T12:00:00Z")).await.unwrap()), ["A"]);
        assert_eq!(names(cal.events(&w, t("2026-01-01T11:00:00Z"), t("2026-01-01T12:00:01Z")).await.unwrap()), ["B"]);
        assert!(cal.events(&w, t("2026-01-02T00:00:00Z"), t("2026-01-03T00:00:00Z")).await.unwrap().is_empty());
    }
}
