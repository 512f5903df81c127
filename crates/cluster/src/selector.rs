//! Label and field selectors, as in `?labelSelector=` and `?fieldSelector=` and `spec.selector`.

use std::collections::BTreeSet;

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, set) => get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }

    fn render(&self) -> String {
        let set = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        match self {
            Requirement::Equals(k, v) => format!("{k}={v}"),
            Requirement::NotEquals(k, v) => format!("{k}!={v}"),
            Requirement::In(k, s) => format!("{k} in ({})", set(s)),
            Requirement::NotIn(k, s) => format!("{k} notin ({})", set(s)),
            Requirement::Exists(k) => k.clone(),
            Requirement::NotExists(k) => format!("!{k}"),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Split on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(rest: &str, term: &str) -> Result<BTreeSet<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("label selector term {term:?}: expected a parenthesized value list"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

fn check_key(key: &str, term: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !key.starts_with(['-', '.', '/']);
    if valid { Ok(key.to_string()) } else { Err(format!("label selector term {term:?}: invalid label key {key:?}")) }
}

impl LabelSelector {
    /// Parse the `labelSelector` query syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for raw in split_terms(text) {
            let term = raw.trim();
            if term.is_empty() {
                return Err(format!("label selector {text:?} has an empty term"));
            }
            let req = if let Some(key) = term.strip_prefix('!') {
                Requirement::NotExists(check_key(key, term)?)
            } else if let Some((k, v)) = term.split_once("!=") {
                Requirement::NotEquals(check_key(k, term)?, v.trim().to_string())
            } else if let Some((k, v)) = term.split_once("==") {
                Requirement::Equals(check_key(k, term)?, v.trim().to_string())
            } else if let Some((k, v)) = term.split_once('=') {
                Requirement::Equals(check_key(k, term)?, v.trim().to_string())
            } else if let Some((k, rest)) = term.split_once(" notin ") {
                Requirement::NotIn(check_key(k, term)?, parse_set(rest, term)?)
            } else if let Some((k, rest)) = term.split_once(" in ") {
                Requirement::In(check_key(k, term)?, parse_set(rest, term)?)
            } else {
                Requirement::Exists(check_key(term, term)?)
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    /// Build from a `metav1.LabelSelector` object (`matchLabels` and `matchExpressions`).
    pub fn from_object(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().ok_or_else(|| format!("matchLabels.{k} must be a string"))?;
                requirements.push(Requirement::Equals(k.clone(), v.to_string()));
            }
        }
        if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
            for (i, e) in exprs.iter().enumerate() {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("matchExpressions[{i}].key is missing"))?
                    .to_string();
                let values: BTreeSet<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
                requirements.push(match op {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::NotExists(key),
                    other => {
                        return Err(format!(
                            "matchExpressions[{i}].operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                        ));
                    }
                });
            }
        }
        Ok(Self { requirements })
    }

    /// Whether no requirement is given (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object (its `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels").and_then(Value::as_object);
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The query-string form, as `status.selector` of a Scale shows it.
    pub fn render(&self) -> String {
        self.requirements.iter().map(Requirement::render).collect::<Vec<_>>().join(",")
    }
}

/// A parsed field selector: `path=value` / `path==value` / `path!=value` terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parse `metadata.name=x,involvedObject.kind!=Pod`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let term = raw.trim();
            if term.is_empty() {
                continue;
            }
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, true, v)
            } else {
                return Err(format!("field selector term {term:?}: expected path=value or path!=value"));
            };
            let pointer = format!("/{}", path.trim().replace('.', "/"));
            terms.push((pointer, equal, value.trim().to_string()));
        }
        Ok(Self { terms })
    }

    /// Whether the object's fields satisfy every term (a missing field reads as "").
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(pointer, equal, value)| {
            let actual = match object.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let s = LabelSelector::parse("app=shop, tier!=db,env in (prod, staging),zone notin (a),team,!legacy").unwrap();
        assert!(s.matches(&pod(json!({"app": "shop", "tier": "web", "env": "prod", "zone": "b", "team": "x"}))));
        assert!(!s.matches(&pod(json!({"app": "shop", "tier": "db", "env": "prod", "team": "x"}))));
        assert!(!s.matches(&pod(json!({"app": "shop", "env": "dev", "team": "x"}))));
        assert!(!s.matches(&pod(json!({"app": "shop", "env": "prod", "team": "x", "legacy": "y"}))));
        assert!(!s.matches(&pod(json!({"app": "shop", "env": "prod"}))));
    }

    #[test]
    fn empty_selector_matches_everything_and_bad_keys_are_rejected() {
        assert!(LabelSelector::parse("").unwrap().matches(&pod(json!({}))));
        let err = LabelSelector::parse("a=b,,c").unwrap_err();
        assert!(err.contains("empty term"), "{err}");
        let err = LabelSelector::parse("in (x").unwrap_err();
        assert!(err.contains("invalid label key") || err.contains("parenthesized"), "{err}");
    }

    #[test]
    fn object_selector_renders_as_query_syntax() {
        let s = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "shop"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]
        }))
        .unwrap();
        assert_eq!(s.render(), "app=shop,env in (prod)");
        assert_eq!(LabelSelector::parse(&s.render()).unwrap(), s);
        assert!(LabelSelector::from_object(&json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})).is_err());
    }

    #[test]
    fn field_selector_reads_dotted_paths() {
        let f = FieldSelector::parse("metadata.name=p,status.phase!=Pending").unwrap();
        assert!(f.matches(&pod(json!({}))));
        let f = FieldSelector::parse("metadata.namespace=default").unwrap();
        assert!(!f.matches(&pod(json!({}))));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
