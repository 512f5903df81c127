//! A reader for the Prometheus text exposition format (0.0.4) and OpenMetrics text, enough
//! for the request counter and latency histogram of a pod's `/metrics`.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of `text`; comment lines, blank lines and malformed lines are skipped
/// (one odd line must not hide the others).
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(&rest[1..])?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// Labels up to the closing `}`: the labels and the text after it.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.insert(key, value);
        s = &s[end + 1..];
    }
}

/// Cumulative histogram buckets `(upper bound, count)` summed over label sets, by bound.
pub(crate) fn buckets(samples: &[Sample], histogram: &str) -> Vec<(f64, f64)> {
    let name = format!("{histogram}_bucket");
    let mut by_bound: Vec<(f64, f64)> = Vec::new();
    for s in samples.iter().filter(|s| s.name == name) {
        let Some(le) = s.labels.get("le").and_then(|le| match le.as_str() {
            "+Inf" | "Inf" => Some(f64::INFINITY),
            v => v.parse::<f64>().ok(),
        }) else {
            continue;
        };
        match by_bound.iter_mut().find(|(b, _)| *b == le) {
            Some((_, count)) => *count += s.value,
            None => by_bound.push((le, s.value)),
        }
    }
    by_bound.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_bound
}

/// The `q`-quantile of cumulative buckets, interpolated linearly inside the bucket as
/// Prometheus' `histogram_quantile` does; `None` without observations.
pub(crate) fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                // Beyond the largest finite bound: that bound is the best answer there is.
                return Some(lower.0);
            }
            let inside = count - lower.1;
            let fraction = if inside > 0.0 { (rank - lower.1) / inside } else { 1.0 };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP http_requests HTTP requests served, by status code.
# TYPE http_requests counter
http_requests_total{code="200"} 90
http_requests_total{code="503",path="a \"b\"\\c"} 10 1395066363000
http_requests_created{code="200"} 1.7e9
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 50
http_request_duration_seconds_bucket{le="0.2"} 90
http_request_duration_seconds_bucket{le="+Inf"} 100
http_request_duration_seconds_sum 12.5
http_request_duration_seconds_count 100
garbage line without value{
# EOF
"#;

    #[test]
    fn parses_counters_labels_escapes_and_histograms() {
        let samples = parse(TEXT);
        let total: f64 = samples.iter().filter(|s| s.name == "http_requests_total").map(|s| s.value).sum();
        assert_eq!(total, 100.0);
        let odd = samples.iter().find(|s| s.labels.get("code").map(String::as_str) == Some("503")).unwrap();
        assert_eq!(odd.labels["path"], "a \"b\"\\c");
        let b = buckets(&samples, "http_request_duration_seconds");
        assert_eq!(b, vec![(0.1, 50.0), (0.2, 90.0), (f64::INFINITY, 100.0)]);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let b = vec![(0.1, 50.0), (0.2, 90.0), (f64::INFINITY, 100.0)];
        assert!((quantile(&b, 0.5).unwrap() - 0.1).abs() < 1e-12);
        assert!((quantile(&b, 0.7).unwrap() - 0.15).abs() < 1e-12);
        assert_eq!(quantile(&b, 0.95), Some(0.2), "in the +Inf bucket: the largest finite bound");
        assert_eq!(quantile(&[(0.1, 0.0), (f64::INFINITY, 0.0)], 0.95), None);
    }
}
