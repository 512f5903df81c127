//! kube-rs against the embedded API server: CRUD, patch flavours, scale and status
//! subresources, watches, optimistic concurrency, Leases, Events, metrics and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use std::time::Duration;

use common::{http_client, kube_client, start_cluster, wait_until};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use prescale_cluster::{DeploymentSpec, METRICS_PORT_ANNOTATION};
use serde_json::json;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"team": "shop"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "shop:1"}]},
            },
        },
    }))
    .unwrap()
}

fn ready_count(pods: &[Pod]) -> usize {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count()
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn deployments_get_list_patch_scale_and_pods_follow() {
    let cluster = start_cluster().await;
    let client = kube_client(&cluster);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let created = deployments.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    let got = deployments.get("web").await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some("web"));
    let listed = deployments.list(&ListParams::default().labels("team=shop")).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    assert!(deployments.list(&ListParams::default().labels("team=other")).await.unwrap().items.is_empty());

    // Pods appear at once and turn Ready after the (scaled) startup delay.
    let lp = ListParams::default().labels("app=web");
    wait_until("2 ready pods", Duration::from_secs(10), || async {
        ready_count(&pods.list(&lp).await.unwrap().items) == 2
    })
    .await;
    let pod = pods.list(&lp).await.unwrap().items.remove(0);
    let name = pod.metadata.name.clone().unwrap();
    assert!(name.starts_with("web-") && name.split('-').count() == 3, "{name}");
    assert_eq!(pod.metadata.owner_references.as_ref().unwrap()[0].kind, "Deployment");
    assert_eq!(pod.status.as_ref().unwrap().pod_ip.as_deref(), Some("127.0.0.1"));
    let port: u16 = pod.metadata.annotations.as_ref().unwrap()[METRICS_PORT_ANNOTATION].parse().unwrap();
    let metrics =
        http_client().get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_in_flight"), "{metrics}");
    let ready = pod.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.last_transition_time.unwrap().0 >= pod.metadata.creation_timestamp.unwrap().0);

    // Merge patch of spec.replicas, then the scale subresource.
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().replicas, Some(3));
    assert_eq!(patched.metadata.generation, Some(2));
    wait_until("3 ready pods and status", Duration::from_secs(10), || async {
        let d = deployments.get("web").await.unwrap();
        d.status.and_then(|s| s.ready_replicas) == Some(3)
    })
    .await;
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let scale = deployments
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    wait_until("pods down to 1", Duration::from_secs(10), || async {
        pods.list(&lp).await.unwrap().items.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).count() == 1
    })
    .await;

    // Strategic merge and server-side apply on the same object.
    let d = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"metadata": {"labels": {"tier": "frontend"}}})))
        .await
        .unwrap();
    assert_eq!(d.metadata.labels.unwrap()["tier"], "frontend");
    let applied = deployments
        .patch(
            "web",
            &PatchParams::apply("prescale-test").force(),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.spec.unwrap().replicas, Some(2));

    // JSON patch with a failing test op is refused and changes nothing.
    let err = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([
                    {"op": "test", "path": "/spec/replicas", "value": 9},
                    {"op": "replace", "path": "/spec/replicas", "value": 7}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 422);
    assert_eq!(deployments.get("web").await.unwrap().spec.unwrap().replicas, Some(2));

    // Deleting the Deployment collects its pods.
    deployments.delete("web", &DeleteParams::default()).await.unwrap();
    wait_until("pods collected", Duration::from_secs(10), || async { pods.list(&lp).await.unwrap().items.is_empty() })
        .await;
    assert_eq!(api_error(deployments.get("web").await.unwrap_err()).code, 404);
    cluster.shutdown().await;
}

#[tokio::test]
async fn stale_resource_version_gets_409_conflict() {
    let cluster = start_cluster().await;
    let client = kube_client(&cluster);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"mode": "a"}})).unwrap();
    let first = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut second = first.clone();
    second.data.as_mut().unwrap().insert("mode".into(), "b".into());
    let second = cms.replace("settings", &PostParams::default(), &second).await.unwrap();
    assert_ne!(first.metadata.resource_version, second.metadata.resource_version);

    let mut stale = first.clone();
    stale.data.as_mut().unwrap().insert("mode".into(), "c".into());
    let status = api_error(cms.replace("settings", &PostParams::default(), &stale).await.unwrap_err());
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Failure));
    assert!(status.message.contains("the object has been modified"), "{}", status.message);
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["mode"], "b");

    // A merge patch carrying a stale resourceVersion is a precondition too.
    let stale_rv = first.metadata.resource_version.clone().unwrap();
    let err = cms
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale_rv}, "data": {"mode": "d"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).code, 409);

    // The raw body is the Kubernetes Status shape.
    let url = format!("{}/api/v1/namespaces/default/configmaps/settings", cluster.api_url());
    let resp = http_client().put(&url).json(&stale).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (&body["kind"], &body["apiVersion"], &body["status"], &body["reason"], &body["code"]),
        (&json!("Status"), &json!("v1"), &json!("Failure"), &json!("Conflict"), &json!(409))
    );

    let status = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists"));
    cms.delete("settings", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(cms.get("settings").await.unwrap_err()).code, 404);
    cluster.shutdown().await;
}

#[tokio::test]
async fn lease_acquire_renew_and_lose_race() {
    let cluster = start_cluster().await;
    let client = kube_client(&cluster);
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "prescale-leader"},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15, "leaseTransitions": 0,
            "acquireTime": "2026-03-01T12:00:00.000000Z", "renewTime": "2026-03-01T12:00:00.000000Z"},
    }))
    .unwrap();
    let acquired = leases.create(&PostParams::default(), &lease).await.unwrap();

    // Both replicas read the same version; a renews first, b's takeover conflicts.
    let mut renew = acquired.clone();
    renew.spec.as_mut().unwrap().renew_time =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime("2026-03-01T12:00:05Z".parse().unwrap()));
    let renewed = leases.replace("prescale-leader", &PostParams::default(), &renew).await.unwrap();
    let mut takeover = acquired.clone();
    takeover.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let status = api_error(leases.replace("prescale-leader", &PostParams::default(), &takeover).await.unwrap_err());
    assert_eq!(status.code, 409);
    assert_eq!(
        leases.get("prescale-leader").await.unwrap().spec.unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );

    // With the fresh version the takeover goes through.
    let mut takeover = renewed.clone();
    takeover.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    takeover.spec.as_mut().unwrap().lease_transitions = Some(1);
    let taken = leases.replace("prescale-leader", &PostParams::default(), &takeover).await.unwrap();
    assert_eq!(taken.spec.unwrap().holder_identity.as_deref(), Some("replica-b"));
    cluster.shutdown().await;
}

#[tokio::test]
async fn watches_follow_changes_from_a_resource_version() {
    let cluster = start_cluster().await;
    let client = kube_client(&cluster);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // The runtime watcher (list, then watch) sees creation and later changes.
    let mut stream = watcher(deployments.clone(), watcher::Config::default()).applied_objects().boxed();
    deployments.create(&PostParams::default(), &deployment("watched", 1)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("watched"));
    deployments
        .patch("watched", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap();
    let saw_four = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(d) = stream.try_next().await.unwrap() {
            if d.spec.and_then(|s| s.replicas) == Some(4) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(saw_four);

    // A raw watch from a resourceVersion replays what came after it, then ends on timeoutSeconds.
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "w", "labels": {"k": "v"}}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    cms.patch("w", &PatchParams::default(), &Patch::Merge(json!({"data": {"x": "1"}}))).await.unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();
    let started = std::time::Instant::now();
    let events: Vec<WatchEvent<ConfigMap>> =
        cms.watch(&WatchParams::default().labels("k=v").timeout(1), &rv).await.unwrap().try_collect().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4), "watch honours timeoutSeconds");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        })
        .collect();
    // kube asks for bookmarks by default: one closes the watch with the last version.
    assert_eq!(kinds, vec!["MODIFIED", "DELETED", "BOOKMARK"]);

    // A resourceVersion that is not a number is a bad request.
    let err = cms.watch(&WatchParams::default().timeout(1), "not-a-number").await.map(|_| ()).unwrap_err();
    assert_eq!(api_error(err).code, 400);
    cluster.shutdown().await;
}

#[tokio::test]
async fn events_metrics_and_unserved_paths() {
    let cluster = start_cluster().await;
    let client = kube_client(&cluster);
    cluster.create_deployment(&DeploymentSpec::new("default", "shop", 2)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().labels("app=shop");
    wait_until("2 ready pods", Duration::from_secs(10), || async {
        ready_count(&pods.list(&lp).await.unwrap().items) == 2
    })
    .await;

    // Controllers write Events.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let all = events.list(&ListParams::default()).await.unwrap().items;
    assert!(all.iter().any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")), "{all:?}");
    assert!(all.iter().any(|e| e.reason.as_deref() == Some("Ready")));

    // kube-rs' recorder writes events.k8s.io/v1; they show up as core Events too.
    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        kube::runtime::events::Reporter { controller: "prescale".into(), instance: Some("test".into()) },
    );
    let d: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let target = d.get("shop").await.unwrap();
    recorder
        .publish(
            &kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Normal,
                reason: "RaisedFloor".into(),
                note: Some("floor raised to 4 before the campaign".into()),
                action: "Scale".into(),
                secondary: None,
            },
            &kube::Resource::object_ref(&target, &()),
        )
        .await
        .unwrap();
    let all = events.list(&ListParams::default()).await.unwrap().items;
    let raised = all.iter().find(|e| e.reason.as_deref() == Some("RaisedFloor")).expect("mirrored event");
    assert_eq!(raised.message.as_deref(), Some("floor raised to 4 before the campaign"));
    assert_eq!(raised.involved_object.name.as_deref(), Some("shop"));

    // PodMetrics for each running pod.
    let http = http_client();
    let url =
        format!("{}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dshop", cluster.api_url());
    let list: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["kind"], "PodMetricsList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let usage = &items[0]["containers"][0]["usage"];
    assert!(usage["cpu"].as_str().unwrap().ends_with('n'), "{usage}");
    assert!(usage["memory"].as_str().unwrap().ends_with("Ki"), "{usage}");

    // Unserved paths and verbs answer with a Status, never hang.
    let resp = http.get(format!("{}/apis/example.com/v1/widgets", cluster.api_url())).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!((body["kind"].as_str(), body["reason"].as_str()), (Some("Status"), Some("NotFound")));
    let resp = http
        .post(format!("{}/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", cluster.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let resp = http
        .patch(format!("{}/api/v1/namespaces/default/configmaps/x", cluster.api_url()))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert!(cluster.unserved_requests().iter().any(|r| r.contains("example.com")));
    cluster.shutdown().await;
}
