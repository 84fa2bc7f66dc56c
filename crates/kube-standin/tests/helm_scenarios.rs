//! Real helm 3.19.0 and 4.1.4 against the stand-in: every release command, with the
//! stand-in's stored state checked after each step as a real cluster would hold it.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Bed, chart, condition};
use kube_standin::testing::HelmVersion;
use serde_json::json;

for_each_helm!(install_upgrade_rollback_uninstall);
fn install_upgrade_rollback_uninstall(v: HelmVersion) {
    let bed = Bed::new(v);
    let (v1, v2, v3) = (chart("demo-v1"), chart("demo-v2"), chart("demo-v3"));

    bed.helm_ok(&["install", "demo", &v1]);
    assert_eq!(bed.configmap_data("demo-config"), json!({"message": "hello-v1", "legacy": "only-in-v1"}), "{v}");
    assert_eq!(bed.container("demo-web")["image"], "nginx:1.25", "{v}");
    assert_eq!(bed.env_names("demo-web"), ["MESSAGE"], "{v}");
    assert_eq!(bed.service_ports("demo-web"), [80], "{v}");
    assert!(bed.must("v1", "services", "demo-web")["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."));
    assert_eq!(bed.statuses("demo"), ["deployed"], "{v}");

    // v2 without --wait: the pre-upgrade hook Job runs (and helm waits for it) first.
    bed.helm_ok(&["upgrade", "demo", &v2]);
    assert_eq!(
        bed.configmap_data("demo-config"),
        json!({"message": "hello-v2", "added": "since-v2"}),
        "{v}: legacy key removed"
    );
    assert_eq!(bed.env_names("demo-web"), ["MESSAGE", "EXTRA"], "{v}");
    assert_eq!(bed.container("demo-web")["image"], "nginx:1.26", "{v}");
    let hook = bed.must("batch/v1", "jobs", "demo-migrate");
    assert_eq!(condition(&hook, "Complete").unwrap()["status"], "True", "{v}");
    assert_eq!(bed.statuses("demo"), ["superseded", "deployed"], "{v}");

    // v3 with --wait and a user value.
    bed.helm_ok(&["upgrade", "demo", &v3, "--wait", "--timeout", "30s", "--set", "replicaCount=2"]);
    assert_eq!(bed.env_names("demo-web"), ["MESSAGE"], "{v}: EXTRA removed");
    assert_eq!(bed.service_ports("demo-web"), [8080], "{v}");
    assert_eq!(bed.container("demo-web")["image"], "nginx:1.27", "{v}");
    let dep = bed.must("apps/v1", "deployments", "demo-web");
    assert_eq!(dep["spec"]["replicas"], 2, "{v}");
    assert_eq!(dep["status"]["readyReplicas"], 2, "{v}: --wait returned before the rollout finished");
    assert_eq!(dep["status"]["observedGeneration"], dep["metadata"]["generation"], "{v}");
    assert_eq!(bed.pods_labelled("app.kubernetes.io/instance", "demo").len(), 2, "{v}");
    assert_eq!(bed.statuses("demo"), ["superseded", "superseded", "deployed"], "{v}");

    let status = bed.json(&["status", "demo", "-o", "json"]);
    assert_eq!((status["version"].clone(), status["info"]["status"].clone()), (json!(3), json!("deployed")), "{v}");
    assert_eq!(bed.json(&["get", "values", "demo", "-o", "json"]), json!({"replicaCount": 2}), "{v}");
    let meta = bed.json(&["get", "metadata", "demo", "-o", "json"]);
    assert_eq!((meta["version"].clone(), meta["revision"].clone()), (json!("0.3.0"), json!(3)), "{v}");

    // Back to revision 2: port, env var and image revert; the removed key stays removed.
    bed.helm_ok(&["rollback", "demo", "2", "--wait", "--timeout", "30s"]);
    assert_eq!(bed.service_ports("demo-web"), [80], "{v}");
    assert_eq!(bed.env_names("demo-web"), ["MESSAGE", "EXTRA"], "{v}");
    assert_eq!(bed.container("demo-web")["image"], "nginx:1.26", "{v}");
    assert_eq!(bed.configmap_data("demo-config"), json!({"message": "hello-v2", "added": "since-v2"}), "{v}");
    assert_eq!(bed.must("apps/v1", "deployments", "demo-web")["status"]["readyReplicas"], 1, "{v}");
    let history = bed.history("demo");
    assert_eq!(history.last().unwrap(), &(4, "deployed".to_string(), "Rollback to 2".to_string()), "{v}");

    bed.helm_ok(&["uninstall", "demo", "--wait", "--timeout", "30s"]);
    for (av, plural, name) in
        [("v1", "configmaps", "demo-config"), ("v1", "services", "demo-web"), ("apps/v1", "deployments", "demo-web")]
    {
        assert!(bed.get(av, plural, name).is_none(), "{v}: {plural}/{name} survived uninstall");
    }
    assert!(bed.pods_labelled("app.kubernetes.io/instance", "demo").is_empty(), "{v}: pods not collected");
    assert!(bed.standin.list("apps/v1", "replicasets", Some("default")).is_empty(), "{v}");
    assert!(bed.release_secrets("demo").is_empty(), "{v}: release records left");
    // As on a cluster, helm leaves hook Jobs behind.
    assert!(bed.get("batch/v1", "jobs", "demo-migrate").is_some(), "{v}");
}

/// The `--atomic` (helm 3) / `--rollback-on-failure` (helm 4) flag.
fn rollback_on_failure(v: HelmVersion) -> &'static str {
    if v.major() == 3 { "--atomic" } else { "--rollback-on-failure" }
}

for_each_helm!(failing_wait_and_rollback_on_failure);
fn failing_wait_and_rollback_on_failure(v: HelmVersion) {
    let bed = Bed::new(v);
    let v1 = chart("demo-v1");
    bed.helm_ok(&["install", "demo", &v1, "--wait", "--timeout", "30s"]);

    // A broken image never becomes ready: --wait runs into its timeout.
    let started = Instant::now();
    let err = bed.helm_err(&["upgrade", "demo", &v1, "--set", "image.tag=broken", "--wait", "--timeout", "4s"]);
    let took = started.elapsed();
    assert!(err.contains("context deadline exceeded"), "{v}: unexpected failure: {err}");
    if v.major() == 4 {
        assert!(err.contains("resource Deployment/default/demo-web not ready"), "{v}: {err}");
    }
    assert!(took >= Duration::from_secs(4), "{v}: failed after {took:?}, before its timeout");
    // helm keeps the previous revision deployed when an upgrade fails.
    assert_eq!(bed.statuses("demo"), ["deployed", "failed"], "{v}");
    let dep = bed.must("apps/v1", "deployments", "demo-web");
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:broken", "{v}");
    // A stuck rollout: the old ReplicaSet's pod keeps serving, the new one is not ready.
    assert_eq!(
        (dep["status"]["updatedReplicas"].clone(), dep["status"]["readyReplicas"].clone()),
        (json!(1), json!(1)),
        "{v}"
    );
    assert_eq!(condition(&dep, "Progressing").unwrap()["reason"], "ReplicaSetUpdated", "{v}");

    let err = bed.helm_err(&[
        "upgrade",
        "demo",
        &v1,
        "--set",
        "image.tag=broken",
        rollback_on_failure(v),
        "--wait",
        "--timeout",
        "3s",
    ]);
    assert!(err.contains("has been rolled back"), "{v}: {err}");
    let statuses = bed.statuses("demo");
    assert_eq!(statuses[2..], ["failed", "deployed"], "{v}");
    assert_eq!(statuses.iter().filter(|s| *s == "deployed").count(), 1, "{v}: {statuses:?}");
    assert_eq!(bed.history("demo")[3].2, "Rollback to 1", "{v}");
    let dep = bed.must("apps/v1", "deployments", "demo-web");
    assert_eq!(dep["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25", "{v}");
    assert_eq!(dep["status"]["readyReplicas"], 1, "{v}");
    assert_eq!(dep["status"]["replicas"], 1, "{v}: the broken ReplicaSet was not drained");
}

for_each_helm!(pre_upgrade_hooks);
fn pre_upgrade_hooks(v: HelmVersion) {
    let bed = Bed::new(v);
    bed.helm_ok(&["install", "demo", &chart("demo-v1")]);
    let v2 = chart("demo-v2");

    // A failing hook Job fails the upgrade before any object changes.
    let err = bed.helm_err(&["upgrade", "demo", &v2, "--set", "hookTag=broken", "--timeout", "20s"]);
    let expected = if v.major() == 3 { "BackoffLimitExceeded" } else { "Job Failed" };
    assert!(err.contains("pre-upgrade hooks failed") && err.contains(expected), "{v}: {err}");
    let job = bed.must("batch/v1", "jobs", "demo-migrate");
    assert_eq!(condition(&job, "Failed").unwrap()["status"], "True", "{v}");
    assert_eq!(bed.statuses("demo"), ["deployed", "failed"], "{v}");
    assert_eq!(
        bed.configmap_data("demo-config")["legacy"],
        "only-in-v1",
        "{v}: objects changed despite the failed hook"
    );
    assert_eq!(bed.container("demo-web")["image"], "nginx:1.25", "{v}");

    // before-hook-creation replaces the failed Job; this one succeeds.
    let failed_uid = job["metadata"]["uid"].clone();
    bed.helm_ok(&["upgrade", "demo", &v2, "--wait", "--timeout", "30s"]);
    let job = bed.must("batch/v1", "jobs", "demo-migrate");
    assert_ne!(job["metadata"]["uid"], failed_uid, "{v}: the hook Job was not recreated");
    assert_eq!(condition(&job, "Complete").unwrap()["status"], "True", "{v}");
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36", "{v}");
    assert_eq!(bed.statuses("demo"), ["superseded", "failed", "deployed"], "{v}");
    assert_eq!(bed.container("demo-web")["image"], "nginx:1.26", "{v}");
}

/// helm 4 reacts to watch events: with a 300 ms readiness delay an `upgrade --wait`
/// takes little more than the delay.
#[test]
fn helm4_upgrade_wait_is_fast() {
    let v = HelmVersion::V4_1_4;
    let bed = Bed::with_delay(v, Duration::from_millis(300));
    let v1 = chart("demo-v1");
    bed.helm_ok(&["install", "demo", &v1, "--wait", "--timeout", "30s"]);
    let started = Instant::now();
    bed.helm_ok(&["upgrade", "demo", &v1, "--set", "image.tag=1.26", "--wait", "--timeout", "30s"]);
    let took = started.elapsed();
    eprintln!("helm 4 upgrade --wait with a 300 ms ready delay took {took:?}");
    assert!(took >= Duration::from_millis(300), "{v}: returned after {took:?}, before the workload was ready");
    assert!(took < Duration::from_millis(2500), "{v}: upgrade --wait took {took:?}");
    assert_eq!(bed.must("apps/v1", "deployments", "demo-web")["status"]["updatedReplicas"], 1);
}

for_each_helm!(ordinary_chart);
/// A chart not written for the stand-in: StatefulSet with claim templates, headless and
/// NodePort Services, Secret with stringData, DaemonSet, Jobs, CronJob, Ingress, PVC and
/// a post-install/post-upgrade hook.
fn ordinary_chart(v: HelmVersion) {
    let bed = Bed::new(v);
    let shop = chart("shop");
    bed.helm_ok(&["install", "shop", &shop, "--wait", "--timeout", "30s"]);
    let sts = bed.must("apps/v1", "statefulsets", "shop-db");
    assert_eq!(sts["status"]["readyReplicas"], 1, "{v}");
    assert!(bed.get("v1", "pods", "shop-db-0").is_some(), "{v}");
    assert_eq!(bed.must("v1", "persistentvolumeclaims", "data-shop-db-0")["status"]["phase"], "Bound", "{v}");
    assert_eq!(bed.must("v1", "persistentvolumeclaims", "shop-uploads")["status"]["phase"], "Bound", "{v}");
    let secret = bed.must("v1", "secrets", "shop-db");
    assert_eq!(
        secret["data"],
        json!({"password": "czNjcmV0", "user": "c2hvcA=="}),
        "{v}: stringData not folded into data"
    );
    assert_eq!(bed.must("v1", "services", "shop-db")["spec"]["clusterIP"], "None", "{v}");
    let node_port = bed.must("v1", "services", "shop-api")["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{v}");
    assert_eq!(bed.must("apps/v1", "daemonsets", "shop-agent")["status"]["numberReady"], 1, "{v}");
    assert_eq!(condition(&bed.must("batch/v1", "jobs", "shop-seed-1"), "Complete").unwrap()["status"], "True", "{v}");
    assert!(bed.get("batch/v1", "jobs", "shop-post-install").is_none(), "{v}: hook-succeeded Job not deleted");
    assert!(bed.get("batch/v1", "cronjobs", "shop-cleanup").is_some(), "{v}");
    assert_eq!(bed.must("apps/v1", "deployments", "shop-api")["status"]["readyReplicas"], 1, "{v}");

    bed.helm_ok(&[
        "upgrade",
        "shop",
        &shop,
        "--wait",
        "--timeout",
        "30s",
        "--set",
        "db.replicas=2,db.tag=17.0,password=n3w,agent.enabled=false",
    ]);
    let sts = bed.must("apps/v1", "statefulsets", "shop-db");
    assert_eq!(
        (sts["status"]["readyReplicas"].clone(), sts["status"]["currentRevision"].clone()),
        (json!(2), sts["status"]["updateRevision"].clone()),
        "{v}"
    );
    assert_eq!(bed.must("v1", "pods", "shop-db-0")["spec"]["containers"][0]["image"], "postgres:17.0", "{v}");
    assert!(bed.get("v1", "persistentvolumeclaims", "data-shop-db-1").is_some(), "{v}");
    assert_eq!(bed.must("v1", "secrets", "shop-db")["data"]["password"], "bjN3", "{v}");
    assert!(bed.get("apps/v1", "daemonsets", "shop-agent").is_none(), "{v}: disabled DaemonSet kept");
    assert!(bed.pods_labelled("app.kubernetes.io/component", "agent").is_empty(), "{v}");
    assert!(bed.get("batch/v1", "jobs", "shop-seed-2").is_some(), "{v}");

    bed.helm_ok(&["rollback", "shop", "1", "--wait", "--timeout", "30s"]);
    assert_eq!(bed.must("apps/v1", "statefulsets", "shop-db")["spec"]["replicas"], 1, "{v}");
    assert!(bed.get("v1", "pods", "shop-db-1").is_none(), "{v}: scaled-down pod kept");
    assert_eq!(bed.must("v1", "secrets", "shop-db")["data"]["password"], "czNjcmV0", "{v}");
    assert_eq!(bed.must("apps/v1", "daemonsets", "shop-agent")["status"]["numberReady"], 1, "{v}");
    assert_eq!(bed.statuses("shop"), ["superseded", "superseded", "deployed"], "{v}");

    bed.helm_ok(&["uninstall", "shop", "--wait", "--timeout", "30s"]);
    assert!(bed.get("apps/v1", "statefulsets", "shop-db").is_none(), "{v}");
    assert!(bed.get("v1", "pods", "shop-db-0").is_none(), "{v}");
    // resource-policy: keep, and claims from volumeClaimTemplates, outlive the release.
    assert!(bed.get("v1", "persistentvolumeclaims", "shop-uploads").is_some(), "{v}");
    assert!(bed.get("v1", "persistentvolumeclaims", "data-shop-db-0").is_some(), "{v}");
}
