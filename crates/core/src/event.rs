//! Scheduled events: what operators announce in advance.
//!
//! The serde shape of [`ScheduledEvent`] (snake_case, RFC 3339 UTC times) is also
//! the JSON body of the daemon's events API, so it is a public contract.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An announced event that may move traffic ("spring campaign email at 14:00").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct ScheduledEvent {
    /// Stable identifier, unique per workload.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Event kind, e.g. `marketing-campaign`, `match`, `launch`. Uplifts are learned per kind.
    pub kind: String,
    /// Scheduled start (RFC 3339, UTC).
    pub start: DateTime<Utc>,
    /// Scheduled end (RFC 3339, UTC).
    pub end: DateTime<Utc>,
    /// Free text from the operator. Untrusted: never followed as instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The operator's own estimate of the traffic multiplier during the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_multiplier: Option<f64>,
}

/// One invalid field of an input, named by its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's path, e.g. `end` or `workloads[2].mode`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Longest accepted event id, name or kind.
const MAX_LABEL_LEN: usize = 200;
/// Longest accepted description.
const MAX_DESCRIPTION_LEN: usize = 4000;

impl ScheduledEvent {
    /// Build an id from the name and start when a source has none: `sts-70-launch-19950713t1041`.
    pub fn derive_id(name: &str, start: DateTime<Utc>) -> String {
        let mut slug = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        format!("{slug}-{}", start.format("%Y%m%dt%H%M"))
    }

    /// Length of the event.
    pub fn duration(&self) -> chrono::Duration {
        self.end - self.start
    }

    /// Whether `t` lies in `[start, end)`.
    pub fn is_active(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// Every problem of this event at once, each with its field name.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field: &str, ok: bool, problem: String| {
            if !ok {
                errors.push(FieldError { field: field.to_string(), problem });
            }
        };
        for (field, value) in [("id", &self.id), ("name", &self.name), ("kind", &self.kind)] {
            check(field, !value.trim().is_empty(), "must not be empty".into());
            check(field, value.len() <= MAX_LABEL_LEN, format!("must be at most {MAX_LABEL_LEN} characters"));
        }
        check(
            "id",
            self.id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "may contain only ASCII letters, digits, '-', '_' and '.'".into(),
        );
        check(
            "kind",
            self.kind.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "may contain only ASCII letters, digits, '-', '_' and '.'".into(),
        );
        check("end", self.end > self.start, format!("must be after start ({})", self.start.to_rfc3339()));
        if let Some(d) = &self.description {
            check(
                "description",
                d.len() <= MAX_DESCRIPTION_LEN,
                format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
            );
        }
        if let Some(m) = self.expected_multiplier {
            check(
                "expected_multiplier",
                m.is_finite() && m > 0.0 && m <= 100.0,
                format!("must be a number in (0, 100], got {m}"),
            );
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ScheduledEvent {
        ScheduledEvent {
            id: "spring".into(),
            name: "Spring campaign".into(),
            kind: "marketing-campaign".into(),
            start: "2026-03-01T14:00:00Z".parse().unwrap(),
            end: "2026-03-01T15:00:00Z".parse().unwrap(),
            description: None,
            expected_multiplier: Some(3.0),
        }
    }

    #[test]
    fn json_shape_is_snake_case_rfc3339() {
        let json = serde_json::to_value(event()).unwrap();
        assert_eq!(json["start"], "2026-03-01T14:00:00Z");
        assert_eq!(json["expected_multiplier"], 3.0);
        assert!(json.get("description").is_none());
        let back: ScheduledEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut json = serde_json::to_value(event()).unwrap();
        json["replicas"] = 1000.into();
        let err = serde_json::from_value::<ScheduledEvent>(json).unwrap_err();
        assert!(err.to_string().contains("replicas"), "{err}");
    }

    #[test]
    fn validate_lists_every_problem() {
        let mut e = event();
        e.id = String::new();
        e.end = e.start;
        e.expected_multiplier = Some(-1.0);
        let errors = e.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&"id") && fields.contains(&"end") && fields.contains(&"expected_multiplier"),
            "{fields:?}"
        );
    }

    #[test]
    fn derived_ids_are_slugs() {
        let id = ScheduledEvent::derive_id("STS-70 Discovery launch", "1995-07-13T10:41:55Z".parse().unwrap());
        assert_eq!(id, "sts-70-discovery-launch-19950713t1041");
    }
}
