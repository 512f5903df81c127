//! The Chat Completions wire format, read leniently.
//!
//! Compatible servers differ in small ways: error bodies may be nested objects, flat
//! objects or plain strings; `created` may be a float; `finish_reason` may be null or
//! empty; content may be a string or a list of parts, and may arrive wrapped in code
//! fences. Everything here accepts those variations; the answer's *content* is then
//! validated strictly elsewhere.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The useful part of a successful chat completion.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ChatReply {
    /// The assistant's text (parts joined), empty when none.
    pub content: String,
    /// `finish_reason`, `None` when null, empty or absent.
    pub finish_reason: Option<String>,
    /// `message.refusal`, when the server reports one.
    pub refusal: Option<String>,
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens`.
    pub completion_tokens: u64,
}

/// Parse a 2xx response body. Fails only when there is no usable first choice.
pub(crate) fn parse_reply(body: &str) -> Result<ChatReply, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("response body is not JSON ({e}): {}", excerpt(body, 120)))?;
    if value.get("choices").is_none()
        && let Some(error) = error_from_value(&value)
    {
        return Err(format!("server reported an error: {}", error.message));
    }
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| format!("response has no choices: {}", excerpt(body, 120)))?;
    let message = choice.get("message").or_else(|| choice.get("delta"));
    let content = message.and_then(|m| m.get("content")).map(content_text).unwrap_or_default();
    let refusal = message
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_ascii_lowercase);
    let usage = value.get("usage");
    let tokens = |field: &str| usage.and_then(|u| u.get(field)).and_then(as_count).unwrap_or(0);
    Ok(ChatReply {
        content,
        finish_reason,
        refusal,
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
    })
}

/// A count that may be written as an integer or a float.
fn as_count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f.round() as u64))
}

/// Text of a `content` field: a string, or a list of `{"type":"text","text":..}` parts.
fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.as_str().or_else(|| p.get("text").and_then(Value::as_str)))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// What an error body says.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ErrorBody {
    /// The human-readable message (the whole body when it is not JSON).
    pub message: String,
    /// `code` or `type`, when given (e.g. `insufficient_quota`).
    pub code: Option<String>,
}

/// Read any of the error body shapes servers use.
pub(crate) fn parse_error_body(body: &str) -> ErrorBody {
    let trimmed = body.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value) => {
            error_from_value(&value).unwrap_or_else(|| ErrorBody { message: excerpt(trimmed, 300), code: None })
        }
        Err(_) => ErrorBody { message: excerpt(trimmed, 300), code: None },
    }
}

fn error_from_value(value: &Value) -> Option<ErrorBody> {
    let code_of = |v: &Value| {
        ["code", "type"].iter().filter_map(|k| v.get(*k)).find_map(|c| match c {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    match value {
        Value::String(s) => Some(ErrorBody { message: excerpt(s, 300), code: None }),
        Value::Object(map) => match map.get("error") {
            Some(Value::String(s)) => Some(ErrorBody { message: excerpt(s, 300), code: code_of(value) }),
            Some(inner @ Value::Object(_)) => {
                let message = inner
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| inner.to_string());
                Some(ErrorBody { message: excerpt(&message, 300), code: code_of(inner).or_else(|| code_of(value)) })
            }
            _ => map
                .get("message")
                .or_else(|| map.get("detail"))
                .and_then(Value::as_str)
                .map(|m| ErrorBody { message: excerpt(m, 300), code: code_of(value) }),
        },
        _ => None,
    }
}

/// Whether a 400 body says the structured-output request was the problem.
pub(crate) fn mentions_response_format(error: &ErrorBody) -> bool {
    let text = format!("{} {}", error.message, error.code.as_deref().unwrap_or("")).to_ascii_lowercase();
    ["response_format", "json_schema", "schema", "json_object"].iter().any(|k| text.contains(k))
}

/// The server's hint of when to retry, from `retry-after-ms`, `Retry-After` (seconds or an
/// HTTP date, compared with `now`) or `x-ratelimit-reset-*` (`1s`, `6m0s`, `20ms`).
pub(crate) fn retry_hint(header: impl Fn(&str) -> Option<String>, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    if let Some(value) = header("retry-after") {
        let value = value.trim();
        if let Ok(secs) = value.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Some(Duration::from_secs_f64(secs));
            }
        } else if let Ok(date) = DateTime::parse_from_rfc2822(value) {
            return Some((date.with_timezone(&Utc) - now).to_std().unwrap_or_default());
        }
    }
    // Prefer the limit that is exhausted; otherwise the later of the two resets.
    let exhausted = |kind: &str| header(&format!("x-ratelimit-remaining-{kind}")).is_some_and(|v| v.trim() == "0");
    let reset = |kind: &str| header(&format!("x-ratelimit-reset-{kind}")).and_then(|v| parse_go_duration(&v));
    let (requests, tokens) = (reset("requests"), reset("tokens"));
    match (exhausted("requests"), exhausted("tokens")) {
        (true, false) if requests.is_some() => requests,
        (false, true) if tokens.is_some() => tokens,
        _ => requests.max(tokens),
    }
}

/// Parse `1s`, `6m0s`, `1h2m3.5s`, `20ms` or a bare number of seconds.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total))
}

/// The JSON inside a reply: code fences removed, and the outermost `{...}` taken when
/// prose surrounds it.
pub(crate) fn json_payload(content: &str) -> &str {
    let mut text = content.trim();
    if let Some(rest) = text.strip_prefix("```") {
        // Drop the info string (`json`) up to the end of the first line.
        let rest = rest.split_once('\n').map_or("", |(_, body)| body);
        text = rest.trim_end().strip_suffix("```").unwrap_or(rest).trim();
    }
    if !text.starts_with('{')
        && let (Some(open), Some(close)) = (text.find('{'), text.rfind('}'))
        && open < close
    {
        return &text[open..=close];
    }
    text
}

/// At most `max` characters of `text`, control characters replaced by spaces.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_accepts_float_created_null_finish_reason_and_parts() {
        let body = r#"{"id":"x","object":"chat.completion","created":1718000000.5,"model":"m",
            "choices":[{"index":0,"message":{"role":"assistant","content":"{\"a\":1}"},"finish_reason":null}],
            "usage":{"prompt_tokens":900,"completion_tokens":80.0,"total_tokens":980}}"#;
        let r = parse_reply(body).unwrap();
        assert_eq!(r.content, r#"{"a":1}"#);
        assert_eq!(r.finish_reason, None);
        assert_eq!((r.prompt_tokens, r.completion_tokens), (900, 80));

        let body = r#"{"choices":[{"message":{"content":[{"type":"text","text":"he"},{"type":"text","text":"llo"}],
            "refusal":null},"finish_reason":""}]}"#;
        let r = parse_reply(body).unwrap();
        assert_eq!((r.content.as_str(), r.finish_reason.clone(), r.refusal.clone()), ("hello", None, None));
    }

    #[test]
    fn reply_reports_refusal_and_length() {
        let body =
            r#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#;
        assert_eq!(parse_reply(body).unwrap().refusal.as_deref(), Some("I can't help with that."));
        let body = r#"{"choices":[{"message":{"content":"{\"ev"},"finish_reason":"LENGTH"}]}"#;
        assert_eq!(parse_reply(body).unwrap().finish_reason.as_deref(), Some("length"));
        assert!(parse_reply(r#"{"error":{"message":"boom"}}"#).unwrap_err().contains("boom"));
        assert!(parse_reply("<html>").is_err());
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let nested = parse_error_body(
            r#"{"error":{"message":"You exceeded your quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        );
        assert_eq!(nested.message, "You exceeded your quota");
        assert_eq!(nested.code.as_deref(), Some("insufficient_quota"));
        assert_eq!(parse_error_body(r#"{"message":"model not found","code":404}"#).code.as_deref(), Some("404"));
        assert_eq!(parse_error_body(r#"{"error":"Model is unloaded."}"#).message, "Model is unloaded.");
        assert_eq!(parse_error_body(r#""quoted string""#).message, "quoted string");
        assert_eq!(parse_error_body("Internal Server Error\n").message, "Internal Server Error");
        assert!(mentions_response_format(&parse_error_body(
            r#"{"error":"'response_format.type' must be 'json_schema' or 'text'"}"#
        )));
        assert!(!mentions_response_format(&parse_error_body(r#"{"error":"context length exceeded"}"#)));
    }

    #[test]
    fn retry_hints_in_every_form() {
        let now: DateTime<Utc> = "2015-10-21T07:28:00Z".parse().unwrap();
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(retry_hint(with(&[("retry-after", "1")]), now), Some(Duration::from_secs(1)));
        assert_eq!(
            retry_hint(with(&[("retry-after-ms", "250"), ("retry-after", "9")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_hint(with(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_hint(with(&[("x-ratelimit-reset-requests", "6m0s"), ("x-ratelimit-reset-tokens", "20ms")]), now),
            Some(Duration::from_secs(360))
        );
        assert_eq!(
            retry_hint(
                with(&[
                    ("x-ratelimit-reset-requests", "6m0s"),
                    ("x-ratelimit-reset-tokens", "1.5s"),
                    ("x-ratelimit-remaining-tokens", "0")
                ]),
                now
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_hint(with(&[]), now), None);
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("soon"), None);
    }

    #[test]
    fn payload_strips_fences_and_prose() {
        assert_eq!(json_payload("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(json_payload("```\n{\"a\":1}```"), "{\"a\":1}");
        assert_eq!(json_payload("Here it is: {\"a\":1} hope it helps"), "{\"a\":1}");
        assert_eq!(json_payload("  {\"a\":1}  "), "{\"a\":1}");
    }
}
