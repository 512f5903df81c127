//! Parsing Prometheus HTTP API answers into values on a grid.
//!
//! The body decides first: Prometheus sends `{"status":"error",...}` with HTTP 400,
//! 422 or 503, so an error body is reported as the query error it names. Only a
//! non-2xx answer without such a body (a proxy's 502 page, say) becomes an HTTP error.

use serde::Deserialize;
use serde_json::Value;

use crate::CollectorError;

/// The envelope every Prometheus API answer shares.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

/// The `data` of a successful query.
#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub(crate) enum QueryData {
    /// Range query answer: series with many samples each.
    Matrix(Vec<RangeSeries>),
    /// Instant query answer: series with one sample each.
    Vector(Vec<InstantSample>),
    /// Instant query of a scalar expression.
    Scalar(RawSample),
    /// Instant query of a string expression (never a number).
    String(serde::de::IgnoredAny),
}

/// A sample as Prometheus sends it: `[unix_seconds, "value"]`.
pub(crate) type RawSample = (f64, String);

/// One series of a matrix.
#[derive(Debug, Deserialize)]
pub(crate) struct RangeSeries {
    #[serde(default)]
    pub values: Vec<RawSample>,
}

/// One series of a vector.
#[derive(Debug, Deserialize)]
pub(crate) struct InstantSample {
    pub value: RawSample,
}

/// Context for turning an answer into a result or an error.
pub(crate) struct Exchange<'a> {
    pub query: &'a str,
    pub url: &'a str,
    pub timeout_ms: u64,
}

/// Longest piece of a body quoted in an error.
const BODY_EXCERPT: usize = 300;

/// The data of an answer, or the error it carries.
pub(crate) fn parse_answer(ex: &Exchange<'_>, http_status: u16, body: &str) -> Result<QueryData, CollectorError> {
    let envelope = serde_json::from_str::<Envelope>(body);
    let success = (200..300).contains(&http_status);
    let envelope = match envelope {
        Ok(env) if env.status == "error" => {
            let error_type = env.error_type.unwrap_or_default();
            if error_type == "timeout" {
                return Err(CollectorError::Timeout { query: ex.query.to_string(), timeout_ms: ex.timeout_ms });
            }
            return Err(CollectorError::Query {
                query: ex.query.to_string(),
                error_type,
                message: env.error.unwrap_or_default(),
            });
        }
        Ok(env) if success => env,
        Ok(_) | Err(_) if !success => {
            return Err(CollectorError::Http { url: ex.url.to_string(), status: http_status, body: excerpt(body) });
        }
        Ok(_) | Err(_) => {
            return Err(malformed(ex, format!("not a Prometheus API answer: {}", excerpt(body))));
        }
    };
    if envelope.status != "success" {
        return Err(malformed(ex, format!("unknown status {:?}", envelope.status)));
    }
    for warning in &envelope.warnings {
        tracing::warn!(query = ex.query, warning = warning.as_str(), "Prometheus warning");
    }
    let data = envelope.data.ok_or_else(|| malformed(ex, "success without data".into()))?;
    serde_json::from_value(data).map_err(|e| malformed(ex, format!("unexpected data: {e}")))
}

/// A sample's value: `None` for `NaN` and infinities, an error for anything that is not a number.
pub(crate) fn sample_value(ex: &Exchange<'_>, raw: &str) -> Result<Option<f64>, CollectorError> {
    let value: f64 = raw.parse().map_err(|_| malformed(ex, format!("sample value {raw:?} is not a number")))?;
    Ok(value.is_finite().then_some(value))
}

/// Writes a matrix into `slots`, whose first slot is evaluated at `first_eval_secs`
/// and each next one `step_secs` later. Returns whether the matrix held a series.
pub(crate) fn fill_matrix(
    ex: &Exchange<'_>,
    data: QueryData,
    first_eval_secs: i64,
    step_secs: i64,
    slots: &mut [Option<f64>],
) -> Result<bool, CollectorError> {
    let series = match data {
        QueryData::Matrix(series) => series,
        other => return Err(malformed(ex, format!("expected a matrix, got {}", kind(&other)))),
    };
    let Some(only) = single(ex, series)? else {
        return Ok(false);
    };
    let first_ms = first_eval_secs * 1000;
    let step_ms = step_secs * 1000;
    for (ts, raw) in &only.values {
        let offset_ms = (ts * 1000.0).round() as i64 - first_ms;
        let index = (offset_ms >= 0 && offset_ms % step_ms == 0)
            .then(|| (offset_ms / step_ms) as usize)
            .filter(|i| *i < slots.len())
            .ok_or_else(|| malformed(ex, format!("sample at {ts} lies off the requested grid")))?;
        slots[index] = sample_value(ex, raw)?;
    }
    Ok(true)
}

/// The single value of an instant answer; `None` for `NaN` or infinity.
pub(crate) fn instant_value(ex: &Exchange<'_>, data: QueryData) -> Result<Option<f64>, CollectorError> {
    match data {
        QueryData::Vector(samples) => match single(ex, samples)? {
            Some(sample) => sample_value(ex, &sample.value.1),
            None => Err(CollectorError::EmptyResult { query: ex.query.to_string() }),
        },
        QueryData::Scalar((_, raw)) => sample_value(ex, &raw),
        other => Err(malformed(ex, format!("expected a vector or scalar, got {}", kind(&other)))),
    }
}

fn single<T>(ex: &Exchange<'_>, mut items: Vec<T>) -> Result<Option<T>, CollectorError> {
    match items.len() {
        0 | 1 => Ok(items.pop()),
        count => Err(CollectorError::MultipleSeries { query: ex.query.to_string(), count }),
    }
}

fn kind(data: &QueryData) -> &'static str {
    match data {
        QueryData::Matrix(_) => "a matrix",
        QueryData::Vector(_) => "a vector",
        QueryData::Scalar(_) => "a scalar",
        QueryData::String(_) => "a string",
    }
}

fn malformed(ex: &Exchange<'_>, message: String) -> CollectorError {
    CollectorError::MalformedResponse { query: ex.query.to_string(), message }
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}...", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EX: Exchange<'static> = Exchange { query: "up", url: "http://prom/api/v1/query", timeout_ms: 1000 };

    fn matrix(body: &str, first: i64, step: i64, len: usize) -> Result<(bool, Vec<Option<f64>>), CollectorError> {
        let data = parse_answer(&EX, 200, body)?;
        let mut slots = vec![None; len];
        let had = fill_matrix(&EX, data, first, step, &mut slots)?;
        Ok((had, slots))
    }

    #[test]
    fn status_error_becomes_a_query_error_whatever_the_http_status() {
        let body =
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected right parenthesis ')'"}"#;
        for status in [200, 400, 422] {
            match parse_answer(&EX, status, body) {
                Err(CollectorError::Query { error_type, message, .. }) => {
                    assert_eq!(error_type, "bad_data");
                    assert!(message.contains("parse error"));
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn server_side_timeout_is_a_timeout() {
        let body = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        assert!(matches!(parse_answer(&EX, 503, body), Err(CollectorError::Timeout { timeout_ms: 1000, .. })));
    }

    #[test]
    fn http_error_without_api_body_keeps_status_and_excerpt() {
        let body = format!("<html>bad gateway{}</html>", "x".repeat(1000));
        match parse_answer(&EX, 502, &body) {
            Err(CollectorError::Http { status, body, url }) => {
                assert_eq!(status, 502);
                assert!(body.starts_with("<html>bad gateway") && body.len() < 400, "{body}");
                assert_eq!(url, EX.url);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_with_200_is_malformed() {
        assert!(matches!(parse_answer(&EX, 200, "hello"), Err(CollectorError::MalformedResponse { .. })));
        let no_data = r#"{"status":"success"}"#;
        assert!(matches!(parse_answer(&EX, 200, no_data), Err(CollectorError::MalformedResponse { .. })));
    }

    #[test]
    fn matrix_with_gaps_nan_and_inf_leaves_missing_points() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[100,"1.5"],[110,"NaN"],[130,"+Inf"],[140,"-Inf"],[150,"7"]]}]},
            "warnings":["something odd"]}"#;
        let (had, slots) = matrix(body, 100, 10, 6).unwrap();
        assert!(had);
        assert_eq!(slots, vec![Some(1.5), None, None, None, None, Some(7.0)]);
    }

    #[test]
    fn fractional_timestamps_are_matched_to_the_grid() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"b"},"values":[[1700000000.000,"2"],[1700000060,"3e2"]]}]}}"#;
        let (_, slots) = matrix(body, 1_700_000_000, 60, 2).unwrap();
        assert_eq!(slots, vec![Some(2.0), Some(300.0)]);
    }

    #[test]
    fn empty_matrix_reports_no_series() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(matrix(body, 0, 1, 3).unwrap(), (false, vec![None, None, None]));
    }

    #[test]
    fn off_grid_samples_and_bad_values_are_malformed() {
        let off =
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[105,"1"]]}]}}"#;
        assert!(matches!(matrix(off, 100, 10, 3), Err(CollectorError::MalformedResponse { .. })));
        let late =
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[130,"1"]]}]}}"#;
        assert!(matches!(matrix(late, 100, 10, 3), Err(CollectorError::MalformedResponse { .. })));
        let word =
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[100,"lots"]]}]}}"#;
        assert!(
            matches!(matrix(word, 100, 10, 3), Err(CollectorError::MalformedResponse { message, .. }) if message.contains("lots"))
        );
    }

    #[test]
    fn several_series_are_refused() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"values":[[100,"1"]]},{"metric":{"pod":"b"},"values":[[100,"1"]]}]}}"#;
        assert!(matches!(matrix(body, 100, 10, 1), Err(CollectorError::MultipleSeries { count: 2, .. })));
    }

    #[test]
    fn instant_vector_scalar_empty_and_nan() {
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"4.25"]}]}}"#;
        assert_eq!(instant_value(&EX, parse_answer(&EX, 200, one).unwrap()).unwrap(), Some(4.25));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(instant_value(&EX, parse_answer(&EX, 200, nan).unwrap()).unwrap(), None);
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(instant_value(&EX, parse_answer(&EX, 200, scalar).unwrap()).unwrap(), None);
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(
            instant_value(&EX, parse_answer(&EX, 200, empty).unwrap()),
            Err(CollectorError::EmptyResult { query }) if query == "up"
        ));
        let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#;
        assert!(matches!(
            instant_value(&EX, parse_answer(&EX, 200, string).unwrap()),
            Err(CollectorError::MalformedResponse { .. })
        ));
    }
}
