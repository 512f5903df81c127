//! The LLM's answer: strict validation, and materialization into a forecast series.
//!
//! The model only proposes numbers; code decides whether they are acceptable and turns
//! them into the series `f[t] = baseline[t] * drift * prod_e(1 + w_e(t)(m_e - 1))`.
//! Any value out of bounds rejects the whole answer: a partly trusted answer is worse
//! than the statistical fallback.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::config::{LlmBounds, MultiplierRange, trim_float};
use super::wire::{ChatReply, json_payload};

/// Longest rationale kept, in characters.
pub(crate) const MAX_RATIONALE_CHARS: usize = 300;
/// How much a confidence of 0 widens the p90/p50 ratio (confidence 1 keeps the baseline's).
const LOW_CONFIDENCE_WIDENING: f64 = 0.5;

/// One event as shown to the model, on the request's step grid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventSlot {
    /// The id the model sees (`E1`, `E2`, ...): short, and free of operator text.
    pub prompt_id: String,
    /// The event's own id.
    pub event_id: String,
    /// The event's name (operator text).
    pub name: String,
    /// The event kind.
    pub kind: String,
    /// First step touched by the event, relative to the forecast origin (may be negative).
    pub start_step: i64,
    /// First step after the event (exclusive), always > `start_step`.
    pub end_step: i64,
    /// Accepted multiplier range for this event.
    pub range: MultiplierRange,
}

/// The accepted adjustment for one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Adjustment {
    /// Traffic during the event divided by the baseline.
    pub multiplier: f64,
    /// Steps of ramp-up before the start.
    pub lead_steps: u32,
    /// Steps of ramp-down after the end.
    pub lag_steps: u32,
}

/// A validated answer, keyed by the events' own ids so it survives the passing of time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    /// Per event id; events the model left out are absent (multiplier 1).
    pub adjustments: BTreeMap<String, Adjustment>,
    /// Factor applied to the whole horizon.
    pub drift: f64,
    /// The model's confidence in [0, 1].
    pub confidence: f64,
    /// Advice only: never applied.
    pub advisory_replicas: Option<u32>,
    /// Sanitized, at most [`MAX_RATIONALE_CHARS`] characters.
    pub rationale: String,
}

/// Why an answer was rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejection {
    /// Stable rule name, used as a metric label.
    pub rule: &'static str,
    /// What exactly was wrong.
    pub detail: String,
}

impl Rejection {
    fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Self { rule, detail: detail.into() }
    }

    /// Whether asking once more, with the reason, may give a usable answer.
    pub fn repairable(&self) -> bool {
        !matches!(self.rule, "refusal" | "content_filter")
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.rule)
    }
}

/// Accept or reject a reply as a whole: finish reason, refusal, JSON, bounds.
pub(crate) fn validate_reply(reply: &ChatReply, slots: &[EventSlot], bounds: &LlmBounds) -> Result<Answer, Rejection> {
    match reply.finish_reason.as_deref() {
        Some("length") => return Err(Rejection::new("finish_length", "the answer was cut off (finish_reason length)")),
        Some("content_filter") => {
            return Err(Rejection::new("content_filter", "the answer was withheld (finish_reason content_filter)"));
        }
        _ => {}
    }
    if let Some(refusal) = &reply.refusal {
        return Err(Rejection::new("refusal", format!("the model refused: {}", sanitize(refusal, 120))));
    }
    parse_answer(&reply.content, slots, bounds)
}

/// Phrases that open a refusal written as prose instead of JSON.
const REFUSAL_OPENINGS: [&str; 9] =
    ["i'm sorry", "i am sorry", "sorry, i", "i can't", "i cannot", "i can not", "i'm unable", "i am unable", "i won't"];

/// Parse and validate the JSON content of a reply.
pub(crate) fn parse_answer(content: &str, slots: &[EventSlot], bounds: &LlmBounds) -> Result<Answer, Rejection> {
    let payload = json_payload(content);
    if payload.is_empty() {
        return Err(Rejection::new("unparsable_json", "the answer is empty"));
    }
    let value: Value = match serde_json::from_str(payload) {
        Ok(v) => v,
        Err(e) => {
            let lower = content.trim_start().to_lowercase();
            if REFUSAL_OPENINGS.iter().any(|p| lower.starts_with(p)) {
                return Err(Rejection::new("refusal", format!("the model refused: {}", sanitize(content, 120))));
            }
            return Err(Rejection::new("unparsable_json", format!("the answer is not valid JSON: {e}")));
        }
    };
    let Value::Object(top) = value else {
        return Err(Rejection::new("schema", "the answer must be a JSON object"));
    };
    reject_unknown_fields(&top, &["events", "drift", "confidence", "advisory_replicas", "rationale"], "")?;

    let events = match top.get("events") {
        Some(Value::Array(list)) => list,
        Some(Value::Null) | None => return Err(Rejection::new("schema", "missing field 'events'")),
        Some(_) => return Err(Rejection::new("schema", "'events' must be an array")),
    };
    let by_prompt_id: BTreeMap<&str, &EventSlot> = slots.iter().map(|s| (s.prompt_id.as_str(), s)).collect();
    let mut seen = BTreeSet::new();
    let mut adjustments = BTreeMap::new();
    for (i, item) in events.iter().enumerate() {
        let where_ = format!("events[{i}]");
        let Value::Object(obj) = item else {
            return Err(Rejection::new("schema", format!("{where_} must be an object")));
        };
        reject_unknown_fields(obj, &["id", "multiplier", "lead_steps", "lag_steps"], &where_)?;
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.trim(),
            _ => return Err(Rejection::new("schema", format!("{where_}.id must be a string"))),
        };
        let Some(slot) = by_prompt_id.get(id) else {
            return Err(Rejection::new(
                "unknown_event",
                format!("{where_}.id {:?} is not a listed event", sanitize(id, 40)),
            ));
        };
        if !seen.insert(id.to_string()) {
            return Err(Rejection::new("duplicate_event", format!("{where_}.id {id} appears twice")));
        }
        let multiplier = number(obj, "multiplier", &where_)?;
        if !slot.range.contains(multiplier) {
            return Err(Rejection::new(
                "multiplier_bounds",
                format!("multiplier {} for {id} ({}) is outside {}", trim_float(multiplier), slot.kind, slot.range),
            ));
        }
        let lead_steps = steps(obj, "lead_steps", &where_, bounds.max_lead_steps, "lead_bounds")?;
        let lag_steps = steps(obj, "lag_steps", &where_, bounds.max_lag_steps, "lag_bounds")?;
        adjustments.insert(slot.event_id.clone(), Adjustment { multiplier, lead_steps, lag_steps });
    }

    let drift = number(&top, "drift", "")?;
    if !bounds.drift.contains(drift) {
        return Err(Rejection::new("drift_bounds", format!("drift {} is outside {}", trim_float(drift), bounds.drift)));
    }
    let confidence = number(&top, "confidence", "")?;
    if !(0.0..=1.0).contains(&confidence) {
        return Err(Rejection::new("confidence_bounds", format!("confidence {confidence} is outside [0, 1]")));
    }
    let advisory_replicas = match top.get("advisory_replicas") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(f64::NAN);
            if !(v.fract() == 0.0 && v >= 0.0 && v <= f64::from(bounds.max_advisory_replicas)) {
                return Err(Rejection::new(
                    "advisory_replicas_bounds",
                    format!("advisory_replicas {v} is not an integer in 0..={}", bounds.max_advisory_replicas),
                ));
            }
            Some(v as u32)
        }
        Some(_) => return Err(Rejection::new("schema", "'advisory_replicas' must be an integer or null")),
    };
    let rationale = match top.get("rationale") {
        Some(Value::String(s)) => sanitize(s, MAX_RATIONALE_CHARS),
        Some(Value::Null) | None => return Err(Rejection::new("schema", "missing field 'rationale'")),
        Some(_) => return Err(Rejection::new("schema", "'rationale' must be a string")),
    };
    Ok(Answer { adjustments, drift, confidence, advisory_replicas, rationale })
}

fn reject_unknown_fields(obj: &Map<String, Value>, known: &[&str], where_: &str) -> Result<(), Rejection> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => {
            let at = if where_.is_empty() { String::new() } else { format!(" in {where_}") };
            Err(Rejection::new("schema", format!("unknown field {:?}{at}", sanitize(k, 40))))
        }
        None => Ok(()),
    }
}

fn number(obj: &Map<String, Value>, field: &str, where_: &str) -> Result<f64, Rejection> {
    let path = if where_.is_empty() { field.to_string() } else { format!("{where_}.{field}") };
    match obj.get(field) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| Rejection::new("schema", format!("{path} is not a number"))),
        None | Some(Value::Null) => Err(Rejection::new("schema", format!("missing field {path}"))),
        Some(_) => Err(Rejection::new("schema", format!("{path} must be a number"))),
    }
}

fn steps(obj: &Map<String, Value>, field: &str, where_: &str, max: u32, rule: &'static str) -> Result<u32, Rejection> {
    let v = number(obj, field, where_)?;
    if v.fract() != 0.0 || v < 0.0 || v > f64::from(max) {
        return Err(Rejection::new(rule, format!("{where_}.{field} {v} is not an integer in 0..={max}")));
    }
    Ok(v as u32)
}

/// Text with control characters removed (line breaks and tabs become spaces), cut to `max` characters.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() > max { cleaned.chars().take(max).collect() } else { cleaned.to_string() }
}

/// Weight of an event at step `i`: ramps 0 -> 1 over `lead` steps before the start, 1
/// during the event, 1 -> 0 over `lag` steps after the end, 0 elsewhere.
pub(crate) fn weight(i: i64, slot: &EventSlot, adjustment: &Adjustment) -> f64 {
    if i >= slot.start_step && i < slot.end_step {
        return 1.0;
    }
    let (distance, ramp) = if i < slot.start_step {
        (slot.start_step - i, i64::from(adjustment.lead_steps))
    } else {
        (i - slot.end_step + 1, i64::from(adjustment.lag_steps))
    };
    if distance <= ramp { (ramp + 1 - distance) as f64 / (ramp + 1) as f64 } else { 0.0 }
}

/// The combined event factor `prod_e(1 + w_e(i)(m_e - 1))` at step `i`; exactly 1 where no
/// event's ramped window reaches.
pub(crate) fn event_factor(i: i64, slots: &[EventSlot], answer: &Answer) -> f64 {
    let mut factor = 1.0;
    for slot in slots {
        if let Some(adj) = answer.adjustments.get(&slot.event_id) {
            let w = weight(i, slot, adj);
            if w > 0.0 {
                factor *= 1.0 + w * (adj.multiplier - 1.0);
            }
        }
    }
    factor
}

/// The adjusted median series: `baseline[i] * drift * event_factor(i)`.
pub(crate) fn materialize(baseline: &[f64], slots: &[EventSlot], answer: &Answer) -> Vec<f64> {
    baseline.iter().enumerate().map(|(i, b)| b * answer.drift * event_factor(i as i64, slots, answer)).collect()
}

/// Reject a materialized series that is not finite, negative, or above `max_ratio` x baseline.
pub(crate) fn check_series(series: &[f64], baseline: &[f64], max_ratio: f64) -> Result<(), Rejection> {
    for (i, (f, b)) in series.iter().zip(baseline).enumerate() {
        if !f.is_finite() {
            return Err(Rejection::new("series_not_finite", format!("step {i} is not finite")));
        }
        if *f < 0.0 {
            return Err(Rejection::new("series_negative", format!("step {i} is negative")));
        }
        if *f > max_ratio * b * (1.0 + 1e-12) {
            return Err(Rejection::new(
                "series_above_cap",
                format!("step {i} is {:.2}x the baseline, above the cap of {}x", f / b, trim_float(max_ratio)),
            ));
        }
    }
    Ok(())
}

/// p90 of an adjusted step: the baseline's p90/p50 ratio applied, widened when confidence is low.
pub(crate) fn p90(p50: f64, baseline_p50: f64, baseline_p90: f64, confidence: f64) -> f64 {
    let widening = 1.0 + LOW_CONFIDENCE_WIDENING * (1.0 - confidence.clamp(0.0, 1.0));
    let p90 = if baseline_p50 > 0.0 {
        let ratio = (baseline_p90 / baseline_p50).max(1.0);
        p50 * if ratio.is_finite() { ratio } else { 1.0 } * widening
    } else {
        baseline_p90.max(0.0) * widening
    };
    if p90.is_finite() { p90.max(p50) } else { p50 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slot(n: usize, start: i64, end: i64) -> EventSlot {
        EventSlot {
            prompt_id: format!("E{n}"),
            event_id: format!("event-{n}"),
            name: format!("Event {n}"),
            kind: "marketing-campaign".into(),
            start_step: start,
            end_step: end,
            range: MultiplierRange::new(0.5, 3.0),
        }
    }

    fn answer_json(events: &str) -> String {
        format!(r#"{{"events":[{events}],"drift":1.0,"confidence":0.8,"advisory_replicas":null,"rationale":"ok"}}"#)
    }

    #[test]
    fn valid_answer_is_accepted_and_missing_events_stay_at_one() {
        let slots = [slot(1, 3, 6), slot(2, 10, 12)];
        let a = parse_answer(
            &answer_json(r#"{"id":"E1","multiplier":2.0,"lead_steps":2,"lag_steps":1}"#),
            &slots,
            &LlmBounds::default(),
        )
        .unwrap();
        assert_eq!(a.adjustments.len(), 1);
        let f = materialize(&[10.0; 14], &slots, &a);
        // lead ramp 1/3, 2/3 at steps 1, 2; full at 3..6; lag 1/2 at step 6; untouched elsewhere.
        let expected = [10.0, 10.0 * (1.0 + 1.0 / 3.0), 10.0 * (1.0 + 2.0 / 3.0), 20.0, 20.0, 20.0, 15.0, 10.0];
        for (i, e) in expected.iter().enumerate() {
            assert!((f[i] - e).abs() < 1e-9, "step {i}: {} != {e}", f[i]);
        }
        assert_eq!(&f[7..], &[10.0; 7]);
    }

    #[test]
    fn every_rule_rejects() {
        let slots = [slot(1, 0, 4)];
        let b = LlmBounds::default();
        let cases = [
            (answer_json(r#"{"id":"E1","multiplier":50,"lead_steps":0,"lag_steps":0}"#), "multiplier_bounds"),
            (answer_json(r#"{"id":"E9","multiplier":2,"lead_steps":0,"lag_steps":0}"#), "unknown_event"),
            (
                answer_json(
                    r#"{"id":"E1","multiplier":2,"lead_steps":0,"lag_steps":0},{"id":"E1","multiplier":2,"lead_steps":0,"lag_steps":0}"#,
                ),
                "duplicate_event",
            ),
            (answer_json(r#"{"id":"E1","multiplier":2,"lead_steps":7,"lag_steps":0}"#), "lead_bounds"),
            (answer_json(r#"{"id":"E1","multiplier":2,"lead_steps":1.5,"lag_steps":0}"#), "lead_bounds"),
            (answer_json(r#"{"id":"E1","multiplier":2,"lead_steps":0,"lag_steps":13}"#), "lag_bounds"),
            (answer_json(r#"{"id":"E1","multiplier":2,"lead_steps":0,"lag_steps":0,"replicas":1000}"#), "schema"),
            (r#"{"events":[],"drift":1.5,"confidence":0.5,"rationale":""}"#.to_string(), "drift_bounds"),
            (r#"{"events":[],"drift":1.0,"confidence":1.5,"rationale":""}"#.to_string(), "confidence_bounds"),
            (r#"{"events":[],"drift":1.0,"confidence":0.5}"#.to_string(), "schema"),
            (
                r#"{"events":[],"drift":1.0,"confidence":0.5,"advisory_replicas":-3,"rationale":""}"#.to_string(),
                "advisory_replicas_bounds",
            ),
            ("{\"events\": [".to_string(), "unparsable_json"),
            ("I'm sorry, but I can't help with that.".to_string(), "refusal"),
        ];
        for (content, rule) in cases {
            let err = parse_answer(&content, &slots, &b).unwrap_err();
            assert_eq!(err.rule, rule, "{content}: {err}");
        }
    }

    #[test]
    fn reply_level_rules() {
        let slots = [slot(1, 0, 4)];
        let b = LlmBounds::default();
        let good = answer_json(r#"{"id":"E1","multiplier":2,"lead_steps":0,"lag_steps":0}"#);
        let reply = |finish: Option<&str>, refusal: Option<&str>| ChatReply {
            content: good.clone(),
            finish_reason: finish.map(str::to_string),
            refusal: refusal.map(str::to_string),
            ..ChatReply::default()
        };
        assert!(validate_reply(&reply(None, None), &slots, &b).is_ok());
        assert_eq!(validate_reply(&reply(Some("length"), None), &slots, &b).unwrap_err().rule, "finish_length");
        assert_eq!(
            validate_reply(&reply(Some("content_filter"), None), &slots, &b).unwrap_err().rule,
            "content_filter"
        );
        assert_eq!(validate_reply(&reply(Some("stop"), Some("no")), &slots, &b).unwrap_err().rule, "refusal");
    }

    #[test]
    fn series_rules_reject_non_finite_negative_and_capped_values() {
        let rule = |series: &[f64]| check_series(series, &[10.0, 10.0], 6.0).err().map(|r| r.rule);
        assert_eq!(rule(&[10.0, 60.0]), None);
        assert_eq!(rule(&[10.0, f64::NAN]), Some("series_not_finite"));
        assert_eq!(rule(&[f64::INFINITY, 10.0]), Some("series_not_finite"));
        assert_eq!(rule(&[10.0, -0.5]), Some("series_negative"));
        assert_eq!(rule(&[10.0, 60.1]), Some("series_above_cap"));
    }

    #[test]
    fn rationale_is_sanitized_and_truncated() {
        let long = format!("line one\nline\u{7}two {}", "x".repeat(400));
        let content = format!(
            r#"{{"events":[],"drift":1,"confidence":1,"rationale":{}}}"#,
            serde_json::to_string(&long).unwrap()
        );
        let a = parse_answer(&content, &[], &LlmBounds::default()).unwrap();
        assert!(a.rationale.starts_with("line one linetwo "), "{}", a.rationale);
        assert_eq!(a.rationale.chars().count(), MAX_RATIONALE_CHARS);
    }

    #[test]
    fn p90_keeps_baseline_ratio_and_widens_with_low_confidence() {
        assert_eq!(p90(20.0, 10.0, 12.0, 1.0), 24.0);
        assert_eq!(p90(20.0, 10.0, 12.0, 0.0), 36.0);
        assert_eq!(p90(0.0, 0.0, 2.0, 1.0), 2.0);
        assert_eq!(p90(5.0, 10.0, 8.0, 1.0), 5.0);
    }

    fn arb_case() -> impl Strategy<Value = (Vec<f64>, Vec<EventSlot>, Answer)> {
        let baseline = prop::collection::vec(prop_oneof![Just(0.0), 0.0..1e6f64], 1..60);
        let events = prop::collection::vec((-20i64..70, 1i64..30, 0.0..10.0f64, 0u32..9, 0u32..15), 0..4);
        (baseline, events, 0.5..1.5f64, 0.0..1.0f64).prop_map(|(baseline, events, drift, confidence)| {
            let mut slots = Vec::new();
            let mut adjustments = BTreeMap::new();
            for (n, (start, len, multiplier, lead_steps, lag_steps)) in events.into_iter().enumerate() {
                let s = slot(n + 1, start, start + len);
                adjustments.insert(s.event_id.clone(), Adjustment { multiplier, lead_steps, lag_steps });
                slots.push(s);
            }
            (
                baseline,
                slots,
                Answer { adjustments, drift, confidence, advisory_replicas: None, rationale: String::new() },
            )
        })
    }

    fn to_json(slots: &[EventSlot], a: &Answer) -> String {
        let events: Vec<Value> = slots
            .iter()
            .filter_map(|s| {
                a.adjustments.get(&s.event_id).map(|adj| {
                    serde_json::json!({"id": s.prompt_id, "multiplier": adj.multiplier,
                        "lead_steps": adj.lead_steps, "lag_steps": adj.lag_steps})
                })
            })
            .collect();
        serde_json::json!({"events": events, "drift": a.drift, "confidence": a.confidence,
            "advisory_replicas": null, "rationale": "r"})
        .to_string()
    }

    proptest! {
        #[test]
        fn materialized_series_is_finite_non_negative_and_untouched_outside_windows((baseline, slots, answer) in arb_case()) {
            let f = materialize(&baseline, &slots, &answer);
            prop_assert_eq!(f.len(), baseline.len());
            for (i, (v, b)) in f.iter().zip(&baseline).enumerate() {
                prop_assert!(v.is_finite() && *v >= 0.0, "step {} = {}", i, v);
                let outside_every_window = slots.iter().all(|s| {
                    let adj = answer.adjustments[&s.event_id];
                    let i = i as i64;
                    i < s.start_step - i64::from(adj.lead_steps) || i >= s.end_step + i64::from(adj.lag_steps)
                });
                if outside_every_window {
                    prop_assert_eq!(event_factor(i as i64, &slots, &answer), 1.0);
                    prop_assert_eq!(*v, b * answer.drift);
                }
            }
        }

        #[test]
        fn accepted_answers_stay_within_every_bound((baseline, slots, answer) in arb_case(), max_ratio in 1.0..8.0f64) {
            let bounds = LlmBounds { max_ratio, ..LlmBounds::default() };
            let verdict = parse_answer(&to_json(&slots, &answer), &slots, &bounds);
            let in_bounds = bounds.drift.contains(answer.drift)
                && answer.adjustments.values().all(|a| {
                    (0.5..=3.0).contains(&a.multiplier) && a.lead_steps <= 6 && a.lag_steps <= 12
                });
            prop_assert_eq!(verdict.is_ok(), in_bounds, "{:?}", verdict);
            if let Ok(parsed) = verdict {
                let f = materialize(&baseline, &slots, &parsed);
                if check_series(&f, &baseline, max_ratio).is_ok() {
                    for (v, b) in f.iter().zip(&baseline) {
                        prop_assert!(v.is_finite() && *v >= 0.0 && *v <= max_ratio * b * (1.0 + 1e-9));
                    }
                } else {
                    prop_assert!(f.iter().zip(&baseline).any(|(v, b)| *v > max_ratio * b));
                }
            }
        }
    }
}
