//! A GitLab-like app-version path walked on the e2e bed (real helm 3.19.0 and 4.1.4, the
//! bed's repository `demo`): the `gitlab` fixture chart is versioned 7.x while it packages
//! GitLab 16.x (`v16.1.7-ee`), and the `gitlab` preset counts its required stops in GitLab
//! versions (`versions: app`). The plan shows the app versions and the conditional stops'
//! notes; the walk deploys the charts in order, the newest chart of a shared app version.

#[path = "e2e/bed.rs"]
mod bed;

use bed::Bed;
use kube_standin::testing::HelmVersion;
use serde_json::Value;

fn gitlab_stops_in_app_versions_are_walked(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("gitlab", "7.0.0", "replicaCount: 1\n");
    let args = ["bsr", "--to", "7.3.0", "--chart", "demo/gitlab", "--policy", "gitlab"];

    let (plan, _) = bed.run_expect(&[&args[..], &["--plan"]].concat(), 0);
    assert!(plan.contains("hop 1: 7.0.0 → 7.1.0 (stop, app 16.0.9 → 16.1.7)"), "{version}: {plan}");
    assert!(plan.contains("stop 16.1: required for instances with NPM packages"), "{version}: {plan}");
    assert!(plan.contains("app version 16.2.10 is packaged by charts 7.2.0, 7.2.1: the path deploys 7.2.1"), "{plan}");

    let (stdout, _) = bed.run_expect(&[&args[..], &["--yes", "--snapshot-taken", "-o", "json"]].concat(), 0);
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(report["result"], "completed", "{version}: {stdout}");
    let hops = report["plan"]["hops"].as_array().unwrap();
    let apps: Vec<&str> = hops.iter().map(|h| h["app"]["to"].as_str().unwrap()).collect();
    assert_eq!(apps, ["16.1.7", "16.2.10", "16.3.8"], "{version}: {stdout}");
    let warnings = report["plan"]["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().starts_with("stop 16.2: required for instances")), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["gitlab-7.0.0", "gitlab-7.1.0", "gitlab-7.2.1", "gitlab-7.3.0"], "{version}");
}
both_helms!(gitlab_app_version_path, super::gitlab_stops_in_app_versions_are_walked);
