//! The installed kubectl against the embedded cluster, through a kubeconfig.
//!
//! Skipped (with the reason printed) when kubectl is missing, unless
//! `PRESCALE_REQUIRE_KUBECTL=1`, which turns a missing kubectl into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers may unwrap, like the tests themselves.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{start_cluster, wait_until};
use prescale_cluster::DeploymentSpec;

fn kubectl_path() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).collect::<Vec<_>>())
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/kubectl")).chain(candidates).find(|p| p.is_file())
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .arg("--request-timeout=10s")
            .args(args)
            .output()
            .await
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prescale-kubectl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rows(table: &str) -> Vec<&str> {
    table.lines().skip(1).filter(|l| !l.trim().is_empty()).collect()
}

/// An `autoscaling/v2` HPA on the sample Deployment: 70% CPU, 5 to 10 replicas.
const HPA_V2: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: shop-frontend
  namespace: default
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop-frontend}
  minReplicas: 5
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
";

#[tokio::test]
async fn kubectl_gets_scales_and_autoscales() {
    let Some(bin) = kubectl_path() else {
        assert!(
            std::env::var("PRESCALE_REQUIRE_KUBECTL").as_deref() != Ok("1"),
            "kubectl is not installed and PRESCALE_REQUIRE_KUBECTL=1"
        );
        println!("skipped: kubectl not found on PATH or at /usr/bin/kubectl");
        return;
    };
    let cluster = start_cluster().await;
    let dir = temp_dir("main");
    let kubeconfig = dir.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = Kubectl { bin, kubeconfig, cache: dir.join("cache") };
    cluster.create_deployment(&DeploymentSpec::new("default", "shop-frontend", 2)).await.unwrap();
    cluster.service_url("default", "shop-frontend").await.unwrap();
    let ready = |n: u32| {
        let cluster = &cluster;
        move || async move { cluster.deployment_state("default", "shop-frontend").unwrap().ready == n }
    };
    wait_until("2 ready pods", Duration::from_secs(10), ready(2)).await;

    let out = kubectl.ok(&["get", "deployments"]).await;
    assert!(out.starts_with("NAME"), "{out}");
    let row = rows(&out).into_iter().find(|l| l.starts_with("shop-frontend")).expect("deployment row");
    assert_eq!(row.split_whitespace().collect::<Vec<_>>()[..4], ["shop-frontend", "2/2", "2", "2"], "{out}");

    let out = kubectl.ok(&["get", "pods"]).await;
    let pods = rows(&out);
    assert_eq!(pods.len(), 2, "{out}");
    assert!(
        pods.iter().all(|l| l.starts_with("shop-frontend-") && l.contains("1/1") && l.contains("Running")),
        "{out}"
    );

    let out = kubectl.ok(&["scale", "deployment/shop-frontend", "--replicas=5"]).await;
    assert!(out.contains("deployment.apps/shop-frontend scaled"), "{out}");
    let out = kubectl.ok(&["get", "pods", "-l", "app=shop-frontend"]).await;
    assert_eq!(rows(&out).len(), 5, "new pods appear at once:\n{out}");
    wait_until("5 ready pods", Duration::from_secs(10), ready(5)).await;
    let out = kubectl.ok(&["get", "deployment", "shop-frontend", "-o", "jsonpath={.status.readyReplicas}"]).await;
    assert_eq!(out.trim(), "5");
    let out = kubectl.ok(&["get", "pods", "-o", "json"]).await;
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|p| p["status"]["podIP"] == "127.0.0.1"));

    // kubectl 1.32's `autoscale` writes autoscaling/v1, which the server does not serve; apply a v2 object.
    let hpa = dir.join("hpa.yaml");
    std::fs::write(&hpa, HPA_V2).unwrap();
    // The server publishes no OpenAPI document, so client-side validation is off.
    let out = kubectl.ok(&["apply", "--validate=false", "-f", hpa.to_str().unwrap()]).await;
    assert!(out.contains("horizontalpodautoscaler.autoscaling/shop-frontend created"), "{out}");
    let out = kubectl.ok(&["get", "hpa"]).await;
    let row = rows(&out).into_iter().find(|l| l.starts_with("shop-frontend")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("Deployment/shop-frontend") && row.contains("/70%"), "{out}");
    wait_until("hpa status", Duration::from_secs(10), || async {
        kubectl.ok(&["get", "hpa", "shop-frontend", "-o", "jsonpath={.status.currentReplicas}"]).await.trim() == "5"
    })
    .await;

    let out = kubectl.ok(&["get", "events"]).await;
    assert!(out.starts_with("LAST SEEN"), "{out}");
    assert!(out.contains("ScalingReplicaSet") && out.contains("deployment/shop-frontend"), "{out}");
    assert!(out.contains("Scaled up replica set shop-frontend-") && out.contains("from 2 to 5"), "{out}");

    let out = kubectl.ok(&["get", "svc", "shop-frontend"]).await;
    assert!(out.contains("127.0.0.1"), "{out}");
    let (ok, _, stderr) = kubectl.run(&["get", "deployment", "nope"]).await;
    assert!(!ok && stderr.contains("not found"), "{stderr}");

    let unserved = cluster.unserved_requests();
    assert!(unserved.is_empty(), "kubectl asked for paths the server does not serve: {unserved:?}");
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
