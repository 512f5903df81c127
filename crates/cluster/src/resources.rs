//! The resource types the API server knows, and the discovery documents built from them.
//!
//! One table ([`RESOURCES`]) drives routing, discovery (`/api`, `/apis`, group
//! versions) and validation, so a resource is added in one place.

use serde_json::{Value, json};

/// Verbs of a resource kept in the store with full read-write access.
const RW_VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// Verbs of a computed, read-only resource (metrics).
const RO_VERBS: &[&str] = &["get", "list"];

/// One resource type served by the API server.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    /// Unique key in the store, `group/plural` (`/plural` for the core group).
    pub key: &'static str,
    /// API group, empty for the core group.
    pub group: &'static str,
    /// The one version served.
    pub version: &'static str,
    /// Plural name used in paths.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind of the objects.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Whether the resource has a `/status` subresource (status kept apart from spec).
    pub status: bool,
    /// Whether the resource has a `/scale` subresource.
    pub scale: bool,
    /// Whether objects are kept in the store (false: computed on read, e.g. metrics).
    pub stored: bool,
    /// Whether `kubectl get all` includes it.
    pub in_all: bool,
}

impl ResourceDef {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `plural.group` as Kubernetes names a resource in messages (`deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    fn verbs(&self) -> &'static [&'static str] {
        if self.stored { RW_VERBS } else { RO_VERBS }
    }
}

macro_rules! resource {
    ($key:literal, $group:literal, $version:literal, $plural:literal, $singular:literal, $kind:literal,
     namespaced: $ns:literal, short: [$($short:literal),*], status: $status:literal, scale: $scale:literal,
     stored: $stored:literal, all: $all:literal) => {
        ResourceDef {
            key: $key,
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: &[$($short),*],
            status: $status,
            scale: $scale,
            stored: $stored,
            in_all: $all,
        }
    };
}

/// Every resource the server knows.
pub(crate) static RESOURCES: &[ResourceDef] = &[
    resource!("/namespaces", "", "v1", "namespaces", "namespace", "Namespace",
        namespaced: false, short: ["ns"], status: true, scale: false, stored: true, all: false),
    resource!("/nodes", "", "v1", "nodes", "node", "Node",
        namespaced: false, short: ["no"], status: true, scale: false, stored: true, all: false),
    resource!("/pods", "", "v1", "pods", "pod", "Pod",
        namespaced: true, short: ["po"], status: true, scale: false, stored: true, all: true),
    resource!("/services", "", "v1", "services", "service", "Service",
        namespaced: true, short: ["svc"], status: true, scale: false, stored: true, all: true),
    resource!("/events", "", "v1", "events", "event", "Event",
        namespaced: true, short: ["ev"], status: false, scale: false, stored: true, all: false),
    resource!("/configmaps", "", "v1", "configmaps", "configmap", "ConfigMap",
        namespaced: true, short: ["cm"], status: false, scale: false, stored: true, all: false),
    resource!("apps/deployments", "apps", "v1", "deployments", "deployment", "Deployment",
        namespaced: true, short: ["deploy"], status: true, scale: true, stored: true, all: true),
    resource!("autoscaling/horizontalpodautoscalers", "autoscaling", "v2", "horizontalpodautoscalers",
        "horizontalpodautoscaler", "HorizontalPodAutoscaler",
        namespaced: true, short: ["hpa"], status: true, scale: false, stored: true, all: true),
    resource!("coordination.k8s.io/leases", "coordination.k8s.io", "v1", "leases", "lease", "Lease",
        namespaced: true, short: [], status: false, scale: false, stored: true, all: false),
    resource!("metrics.k8s.io/pods", "metrics.k8s.io", "v1beta1", "pods", "", "PodMetrics",
        namespaced: true, short: [], status: false, scale: false, stored: false, all: false),
    resource!("metrics.k8s.io/nodes", "metrics.k8s.io", "v1beta1", "nodes", "", "NodeMetrics",
        namespaced: false, short: [], status: false, scale: false, stored: false, all: false),
    resource!("events.k8s.io/events", "events.k8s.io", "v1", "events", "event", "Event",
        namespaced: true, short: [], status: false, scale: false, stored: true, all: false),
];

/// The resource served at `group/version/plural`, if any.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource with store key `key`. Panics never: unknown keys return `None`.
pub(crate) fn by_key(key: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.key == key)
}

/// The deployments resource (used by controllers).
pub(crate) fn deployments() -> &'static ResourceDef {
    &RESOURCES[6]
}
/// The pods resource.
pub(crate) fn pods() -> &'static ResourceDef {
    &RESOURCES[2]
}
/// The services resource.
pub(crate) fn services() -> &'static ResourceDef {
    &RESOURCES[3]
}
/// The core events resource.
pub(crate) fn events() -> &'static ResourceDef {
    &RESOURCES[4]
}
/// The namespaces resource.
pub(crate) fn namespaces() -> &'static ResourceDef {
    &RESOURCES[0]
}
/// The nodes resource.
pub(crate) fn nodes() -> &'static ResourceDef {
    &RESOURCES[1]
}
/// The HPA resource.
pub(crate) fn hpas() -> &'static ResourceDef {
    &RESOURCES[7]
}

/// Groups in discovery order, each with its one version.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.iter().any(|(g, _)| *g == r.group) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `GET /api`.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `GET /apis`.
pub(crate) fn group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(|(g, v)| group_json(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, if the group is served.
pub(crate) fn group(name: &str) -> Option<Value> {
    groups().into_iter().find(|(g, _)| *g == name).map(|(g, v)| {
        let mut doc = group_json(g, v);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        doc
    })
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, if served.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&ResourceDef> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    if matching.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in matching {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if r.in_all {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.scale {
            resources.push(json!({
                "name": format!("{}/scale", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcut_accessors_point_at_the_right_resources() {
        assert_eq!(deployments().kind, "Deployment");
        assert_eq!(pods().kind, "Pod");
        assert_eq!(services().kind, "Service");
        assert_eq!(events().kind, "Event");
        assert_eq!(namespaces().kind, "Namespace");
        assert_eq!(nodes().kind, "Node");
        assert_eq!(hpas().kind, "HorizontalPodAutoscaler");
    }

    #[test]
    fn keys_are_unique_and_match_group_and_plural() {
        for r in RESOURCES {
            assert_eq!(r.key, format!("{}/{}", r.group, r.plural));
            assert_eq!(RESOURCES.iter().filter(|o| o.key == r.key).count(), 1);
        }
    }

    #[test]
    fn discovery_lists_scale_subresource_for_deployments() {
        let list = resource_list("apps", "v1").unwrap();
        let names: Vec<&str> =
            list["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["deployments", "deployments/status", "deployments/scale"]);
        assert!(resource_list("apps", "v2").is_none());
        assert!(group("metrics.k8s.io").is_some());
    }
}
