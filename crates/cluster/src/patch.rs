//! The four patch flavours of the Kubernetes API, applied to JSON objects.
//!
//! - JSON merge patch (RFC 7386), `application/merge-patch+json`.
//! - Strategic merge patch, `application/strategic-merge-patch+json`: a merge patch
//!   where lists of objects that all carry a `name` are merged by name (containers,
//!   env, volumes), which covers the common cases without Go's struct tags.
//! - JSON patch (RFC 6902), `application/json-patch+json`.
//! - Server-side apply, `application/apply-patch+yaml`: the applied configuration is
//!   merged like a strategic merge patch; field ownership is not tracked.

use serde_json::Value;

/// Which patch flavour a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// RFC 7386 merge patch.
    Merge,
    /// Strategic merge patch, approximated as described in the module docs.
    Strategic,
    /// RFC 6902 JSON patch.
    Json,
    /// Server-side apply.
    Apply,
}

impl PatchKind {
    /// The flavour named by a `Content-Type`, if it is one of the four.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Parse a patch body: JSON, or YAML for server-side apply.
pub(crate) fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_err) if kind == PatchKind::Apply => serde_yaml_ng::from_slice::<Value>(body)
            .map_err(|e| format!("apply body is neither JSON ({json_err}) nor YAML ({e})")),
        Err(e) => Err(format!("patch body is not valid JSON: {e}")),
    }
}

/// Apply `patch` of flavour `kind` to `target` in place.
pub(crate) fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), String> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err("a merge patch must be a JSON object".to_string());
            }
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err("a strategic merge patch must be a JSON object".to_string());
            }
            strategic_merge(target, patch, true);
            Ok(())
        }
        PatchKind::Apply => {
            if !patch.is_object() {
                return Err("an applied configuration must be an object".to_string());
            }
            strategic_merge(target, patch, false);
            Ok(())
        }
        PatchKind::Json => {
            let ops: json_patch::Patch =
                serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch document: {e}"))?;
            json_patch::patch(target, &ops).map_err(|e| format!("JSON patch failed: {e}"))
        }
    }
}

/// Whether every element of both lists is an object with a string `name`.
fn merge_by_name(a: &[Value], b: &[Value]) -> bool {
    let named = |v: &Value| v.get("name").is_some_and(Value::is_string);
    !b.is_empty() && a.iter().all(named) && b.iter().all(named)
}

/// Merge `patch` into `target`; `null` deletes a key when `nulls_delete`.
fn strategic_merge(target: &mut Value, patch: &Value, nulls_delete: bool) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, pv) in p {
                if key.starts_with("$patch") || key.starts_with("$setElementOrder") || key.starts_with("$retainKeys") {
                    continue;
                }
                if pv.is_null() && nulls_delete {
                    t.remove(key);
                    continue;
                }
                match t.get_mut(key) {
                    Some(tv) => strategic_merge(tv, pv, nulls_delete),
                    None => {
                        let mut fresh = Value::Null;
                        strategic_merge(&mut fresh, pv, nulls_delete);
                        t.insert(key.clone(), fresh);
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if merge_by_name(t, p) => {
            for pv in p {
                let name = pv.get("name").cloned();
                match t.iter_mut().find(|tv| tv.get("name") == name.as_ref()) {
                    Some(tv) => strategic_merge(tv, pv, nulls_delete),
                    None => t.push(pv.clone()),
                }
            }
        }
        (t, p) => {
            // A fresh object from a patch still has its nulls stripped.
            if let Value::Object(po) = p {
                let mut fresh = serde_json::Map::new();
                for (k, v) in po {
                    if v.is_null() && nulls_delete {
                        continue;
                    }
                    let mut inner = Value::Null;
                    strategic_merge(&mut inner, v, nulls_delete);
                    fresh.insert(k.clone(), inner);
                }
                *t = Value::Object(fresh);
            } else {
                *t = p.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "shop:1", "ports": [{"containerPort": 8080}]},
            {"name": "sidecar", "image": "log:1"}
        ]}}}, "metadata": {"labels": {"a": "1", "b": "2"}}})
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let mut d = deployment();
        apply(PatchKind::Merge, &mut d, &json!({"spec": {"replicas": 5}, "metadata": {"labels": {"a": null}}}))
            .unwrap();
        assert_eq!(d["spec"]["replicas"], 5);
        assert_eq!(d["metadata"]["labels"], json!({"b": "2"}));
        apply(
            PatchKind::Merge,
            &mut d,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop:2"}]}}}}),
        )
        .unwrap();
        assert_eq!(d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn strategic_patch_merges_containers_by_name() {
        let mut d = deployment();
        apply(
            PatchKind::Strategic,
            &mut d,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop:2"}]}}}}),
        )
        .unwrap();
        let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "shop:2");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 8080);
    }

    #[test]
    fn json_patch_applies_and_test_op_can_fail() {
        let mut d = deployment();
        apply(PatchKind::Json, &mut d, &json!([{"op": "replace", "path": "/spec/replicas", "value": 7}])).unwrap();
        assert_eq!(d["spec"]["replicas"], 7);
        let err =
            apply(PatchKind::Json, &mut d, &json!([{"op": "test", "path": "/spec/replicas", "value": 1}])).unwrap_err();
        assert!(err.contains("JSON patch failed"), "{err}");
        assert!(apply(PatchKind::Json, &mut d, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn apply_accepts_yaml_and_keeps_unmentioned_fields() {
        let body = b"spec:\n  replicas: 4\n";
        let patch = parse_body(PatchKind::Apply, body).unwrap();
        let mut d = deployment();
        apply(PatchKind::Apply, &mut d, &patch).unwrap();
        assert_eq!(d["spec"]["replicas"], 4);
        assert_eq!(d["metadata"]["labels"]["a"], "1");
        assert!(parse_body(PatchKind::Merge, body).is_err());
    }

    #[test]
    fn content_types_map_to_kinds() {
        assert_eq!(PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"), Some(PatchKind::Merge));
        assert_eq!(PatchKind::from_content_type("application/apply-patch+yaml"), Some(PatchKind::Apply));
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }
}
