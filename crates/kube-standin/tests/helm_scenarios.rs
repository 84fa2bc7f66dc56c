//! Real helm 3.19.0 and 4.1.4 against the stand-in: every release command, with the
//! stand-in's stored state checked after each step as a real cluster would hold it.

mod common;

use common::{Bed, chart, condition};
use kube_standin::testing::HelmVersion;
use serde_json::json;

/// Runs a scenario once per tested helm version, as separate tests named after it.
macro_rules! for_each_helm {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn helm_v3_19_0() {
                super::$scenario(kube_standin::testing::HelmVersion::V3_19_0);
            }
            #[test]
            fn helm_v4_1_4() {
                super::$scenario(kube_standin::testing::HelmVersion::V4_1_4);
            }
        }
    };
}

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
    assert_eq!(bed.configmap_data("demo-config"), json!({"message": "hello-v2", "added": "since-v2"}), "{v}: legacy key removed");
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
    for (av, plural, name) in [("v1", "configmaps", "demo-config"), ("v1", "services", "demo-web"), ("apps/v1", "deployments", "demo-web")] {
        assert!(bed.get(av, plural, name).is_none(), "{v}: {plural}/{name} survived uninstall");
    }
    assert!(bed.pods_labelled("app.kubernetes.io/instance", "demo").is_empty(), "{v}: pods not collected");
    assert!(bed.standin.list("apps/v1", "replicasets", Some("default")).is_empty(), "{v}");
    assert!(bed.release_secrets("demo").is_empty(), "{v}: release records left");
    // As on a cluster, helm leaves hook Jobs behind.
    assert!(bed.get("batch/v1", "jobs", "demo-migrate").is_some(), "{v}");
}
