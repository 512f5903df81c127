//! Server-side printing: `meta.k8s.io/v1 Table` answers for `kubectl get`.
//!
//! kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints
//! the columns the server chooses; the columns here follow the real API server's.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    /// Nothing.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parse the query value; unknown values mean the default.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an `Accept` header asks for a Table.
pub(crate) fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| part.contains("as=Table"))
}

/// Kubernetes' human-readable age (`duration.HumanDuration`).
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{days}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

fn age_of(value: Option<&Value>, now: DateTime<Utc>) -> String {
    value
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| human_duration(now - t.with_timezone(&Utc)))
        .unwrap_or_else(|| "<unknown>".to_string())
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn n(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn none_if_empty(text: String) -> String {
    if text.is_empty() { "<none>".to_string() } else { text }
}

type Column = (&'static str, &'static str, &'static str, i64);

fn columns(res: &ResourceDef) -> Vec<Column> {
    let name = ("Name", "string", "name", 0);
    let age = ("Age", "string", "", 0);
    match res.kind {
        "Deployment" => vec![
            name,
            ("Ready", "string", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            age,
            ("Containers", "string", "", 1),
            ("Images", "string", "", 1),
            ("Selector", "string", "", 1),
        ],
        "Pod" => vec![
            name,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            age,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
        ],
        "Event" => vec![
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
            ("Name", "string", "name", 1),
        ],
        "HorizontalPodAutoscaler" => vec![
            name,
            ("Reference", "string", "", 0),
            ("Targets", "string", "", 0),
            ("MinPods", "string", "", 0),
            ("MaxPods", "integer", "", 0),
            ("Replicas", "integer", "", 0),
            age,
        ],
        "Service" => vec![
            name,
            ("Type", "string", "", 0),
            ("Cluster-IP", "string", "", 0),
            ("External-IP", "string", "", 0),
            ("Port(s)", "string", "", 0),
            age,
            ("Selector", "string", "", 1),
        ],
        "ConfigMap" => vec![name, ("Data", "integer", "", 0), age],
        "Lease" => vec![name, ("Holder", "string", "", 0), age],
        "Namespace" => vec![name, ("Status", "string", "", 0), age],
        "Node" => {
            vec![name, ("Status", "string", "", 0), ("Roles", "string", "", 0), age, ("Version", "string", "", 0)]
        }
        "PodMetrics" => vec![name, ("CPU", "string", "", 0), ("Memory", "string", "", 0), ("Window", "string", "", 0)],
        _ => vec![name, age],
    }
}

fn cells(res: &ResourceDef, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = s(o.pointer("/metadata/name"));
    let age = age_of(o.pointer("/metadata/creationTimestamp"), now);
    match res.kind {
        "Deployment" => {
            let containers = o.pointer("/spec/template/spec/containers").and_then(Value::as_array);
            let join = |field: &str| {
                containers
                    .map(|cs| cs.iter().map(|c| s(c.get(field))).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            };
            let selector = o
                .pointer("/spec/selector/matchLabels")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(Some(v)))).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                json!(name),
                json!(format!("{}/{}", n(o.pointer("/status/readyReplicas")), n(o.pointer("/spec/replicas")))),
                json!(n(o.pointer("/status/updatedReplicas"))),
                json!(n(o.pointer("/status/availableReplicas"))),
                json!(age),
                json!(join("name")),
                json!(join("image")),
                json!(selector),
            ]
        }
        "Pod" => {
            let total = o.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |cs| cs.iter().filter(|c| c["ready"] == true).count());
            let status = if o.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating".to_string()
            } else {
                let phase = s(o.pointer("/status/phase"));
                if phase.is_empty() { "Pending".to_string() } else { phase }
            };
            vec![
                json!(name),
                json!(format!("{ready}/{total}")),
                json!(status),
                json!("0"),
                json!(age),
                json!(none_if_empty(s(o.pointer("/status/podIP")))),
                json!(none_if_empty(s(o.pointer("/spec/nodeName")))),
            ]
        }
        "Event" => {
            let last = o
                .get("lastTimestamp")
                .filter(|v| !v.is_null())
                .or_else(|| o.get("eventTime").filter(|v| !v.is_null()))
                .or_else(|| o.pointer("/metadata/creationTimestamp"));
            let object = format!(
                "{}/{}",
                s(o.pointer("/involvedObject/kind")).to_lowercase(),
                s(o.pointer("/involvedObject/name"))
            );
            vec![
                json!(age_of(last, now)),
                json!(s(o.get("type"))),
                json!(s(o.get("reason"))),
                json!(object),
                json!(s(o.get("message"))),
                json!(name),
            ]
        }
        "HorizontalPodAutoscaler" => {
            let reference =
                format!("{}/{}", s(o.pointer("/spec/scaleTargetRef/kind")), s(o.pointer("/spec/scaleTargetRef/name")));
            vec![
                json!(name),
                json!(reference),
                json!(hpa_targets(o)),
                json!(o.pointer("/spec/minReplicas").map_or("1".to_string(), |v| s(Some(v)))),
                json!(n(o.pointer("/spec/maxReplicas"))),
                json!(n(o.pointer("/status/currentReplicas"))),
                json!(age),
            ]
        }
        "Service" => {
            let ports = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                n(p.get("port")),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let external = o
                .pointer("/status/loadBalancer/ingress/0/ip")
                .map(|v| s(Some(v)))
                .unwrap_or_else(|| "<none>".to_string());
            let selector = o
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(Some(v)))).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                json!(name),
                json!(o.pointer("/spec/type").map_or("ClusterIP".to_string(), |v| s(Some(v)))),
                json!(none_if_empty(s(o.pointer("/spec/clusterIP")))),
                json!(external),
                json!(none_if_empty(ports)),
                json!(age),
                json!(none_if_empty(selector)),
            ]
        }
        "ConfigMap" => {
            let data = o.get("data").and_then(Value::as_object).map_or(0, |m| m.len())
                + o.get("binaryData").and_then(Value::as_object).map_or(0, |m| m.len());
            vec![json!(name), json!(data), json!(age)]
        }
        "Lease" => vec![json!(name), json!(s(o.pointer("/spec/holderIdentity"))), json!(age)],
        "Namespace" => vec![json!(name), json!(s(o.pointer("/status/phase"))), json!(age)],
        "Node" => {
            let ready = o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            vec![
                json!(name),
                json!(if ready { "Ready" } else { "NotReady" }),
                json!("<none>"),
                json!(age),
                json!(s(o.pointer("/status/nodeInfo/kubeletVersion"))),
            ]
        }
        "PodMetrics" => {
            let first = o.pointer("/containers/0/usage");
            vec![
                json!(name),
                json!(s(first.and_then(|u| u.get("cpu")))),
                json!(s(first.and_then(|u| u.get("memory")))),
                json!(s(o.get("window"))),
            ]
        }
        _ => vec![json!(name), json!(age)],
    }
}

/// `cpu: 35%/70%` as kubectl shows an HPA's targets.
fn hpa_targets(o: &Value) -> String {
    let Some(metrics) = o.pointer("/spec/metrics").and_then(Value::as_array) else {
        return "<none>".to_string();
    };
    let current = o.pointer("/status/currentMetrics").and_then(Value::as_array);
    metrics
        .iter()
        .map(|m| {
            let resource = s(m.pointer("/resource/name"));
            let target = m
                .pointer("/resource/target/averageUtilization")
                .map(|v| format!("{}%", s(Some(v))))
                .or_else(|| m.pointer("/resource/target/averageValue").map(|v| s(Some(v))))
                .unwrap_or_else(|| "<unknown>".to_string());
            let now = current
                .and_then(|cs| cs.iter().find(|c| c.pointer("/resource/name") == m.pointer("/resource/name")))
                .and_then(|c| c.pointer("/resource/current/averageUtilization"))
                .map(|v| format!("{}%", s(Some(v))))
                .unwrap_or_else(|| "<unknown>".to_string());
            format!("{resource}: {now}/{target}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_object(o: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(o.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
    }
}

/// A Table of `items`.
pub(crate) fn table(
    res: &ResourceDef,
    items: &[Value],
    now: DateTime<Utc>,
    include: IncludeObject,
    resource_version: u64,
) -> Value {
    let column_definitions: Vec<Value> = columns(res)
        .into_iter()
        .map(|(name, ty, format, priority)| {
            json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(res, o, now)});
            if let Some(obj) = row_object(o, include) {
                row["object"] = obj;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn human_duration_matches_kubernetes() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(45)), "45s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(150)), "2m30s");
        assert_eq!(human_duration(d(600)), "10m");
        assert_eq!(human_duration(d(3 * 3600 + 120)), "3h2m");
        assert_eq!(human_duration(d(30 * 3600)), "30h");
        assert_eq!(human_duration(d(3 * 86400 + 3600)), "3d1h");
        assert_eq!(human_duration(d(-5)), "<invalid>");
    }

    #[test]
    fn deployment_row_shows_ready_over_desired() {
        let now: DateTime<Utc> = "2026-03-01T12:05:00Z".parse().unwrap();
        let d = json!({"metadata": {"name": "shop", "creationTimestamp": "2026-03-01T12:00:00Z"},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "shop:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 5, "availableReplicas": 2}});
        let t = table(resources::deployments(), &[d], now, IncludeObject::Metadata, 9);
        assert_eq!(t["rows"][0]["cells"], json!(["shop", "2/5", 5, 2, "5m", "web", "shop:1", ""]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 8);
        assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
        assert!(!wants_table("application/json"));
    }

    #[test]
    fn hpa_targets_show_current_and_target() {
        let h = json!({"spec": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
            "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}]}});
        assert_eq!(hpa_targets(&h), "cpu: 35%/70%");
    }
}
