//! A GitLab-like app-version path walked on the e2e bed (real helm 3.19.0 and 4.1.4, the
//! bed's repository `demo`): the `gitlab` fixture chart is versioned 7.x while it packages
//! GitLab 16.x (`v16.1.7-ee`), and the `gitlab` preset counts its required stops in GitLab
//! versions (`versions: app`). The plan shows the app versions and the conditional stops'
//! notes; the walk deploys the charts in order, the newest chart of a shared app version.
//! A rollback's window counts in GitLab versions too (`helm safe-rollback` through helm).

#[path = "e2e/bed.rs"]
mod bed;

use bed::Bed;
use chart_standin::{OciAuth, OciOptions, OciRegistry};
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

/// A `versions: app` policy that goes back at most two GitLab minors below the newest
/// GitLab ever deployed, by redeploying the older chart.
const APP_WINDOW_POLICY: &str = "name: gitlab-window\ndescription: GitLab-like, rules in GitLab versions\nversions: app\nupgrade:\n  max_minor_step: 99\n  major: one-at-a-time\n  procedure: p\ndowngrade:\n  patch: p\n  minor:\n    max_minors_below_newest: 2\n    procedure: p\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n      - verify: {}\n";

/// `helm safe-rollback ARGS` as the operator types it, through the installed plugin:
/// (stdout, stderr), the exit code checked.
fn safe_rollback(bed: &Bed, args: &[&str], code: i32) -> (String, String) {
    let out = bed.through_helm("safe-rollback").args(args).output().expect("run helm safe-rollback");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(code), "{}: helm safe-rollback {args:?}\n{stdout}\n{stderr}", bed.version);
    (stdout, stderr)
}

/// The rollback window counted in GitLab versions: chart 8.9.0 packages GitLab 17.5.1, so
/// going back to chart 8.3.0 (17.3.1) is six chart minors but two GitLab minors, allowed
/// and walked; then, from there, chart 8.2.0 (17.2.2) is three GitLab minors below the
/// newest ever deployed (17.5.1): refused, and helm's history gains no revision.
fn gitlab_rollback_window_counts_in_app_versions(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed.env.dir().join("gitlab-window.yaml");
    std::fs::write(&policy, APP_WINDOW_POLICY).unwrap();
    let policy = policy.to_str().unwrap();
    bed.install("gitlab", "8.3.0", "replicaCount: 1\n");
    bed.run_expect(&["bsr", "--to", "8.9.0", "--chart", "demo/gitlab", "--policy", policy, "--yes"], 0);
    let common = ["--chart", "demo/gitlab", "--policy", policy, "--yes", "--accept-data-loss", "-o", "json"];

    let (stdout, stderr) = safe_rollback(&bed, &[&["bsr", "--to", "8.3.0"][..], &common].concat(), 0);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(report["result"], "completed", "{version}: {stdout}");
    let hop = &report["plan"]["hops"][0];
    assert_eq!((&hop["from"], &hop["to"]), (&"8.9.0".into(), &"8.3.0".into()), "{version}: {stdout}");
    assert_eq!((&hop["app"]["from"], &hop["app"]["to"]), (&"17.5.1".into(), &"17.3.1".into()), "{stdout}");
    assert_eq!(hop["kind"], "minor-downgrade", "{version}: {stdout}");
    assert_eq!(bed.charts_deployed(), ["gitlab-8.3.0", "gitlab-8.9.0", "gitlab-8.3.0"], "{version}");

    let before = bed.history();
    let (stdout, _) = safe_rollback(&bed, &[&["bsr", "--to", "8.2.0"][..], &common].concat(), 3);
    let refusal: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(refusal["refused"]["rule"], "downgrade-window", "{version}: {stdout}");
    let message = refusal["refused"]["message"].as_str().unwrap();
    let said = "17.2.2 (chart 8.2.0) is 3 minors below 17.5.1 (chart 8.9.0), the newest version ever deployed";
    assert!(message.starts_with(said), "{version}: {message}");
    let supported = refusal["refused"]["supported"].as_str().unwrap();
    let floor = "roll back no further than 17.3.0 (the oldest offered in 17.3: 17.3.1, chart 8.3.0)";
    assert!(supported.starts_with(floor), "{version}: {supported}");
    assert_eq!(bed.history(), before, "{version}: the refusal changed helm's history");
}
both_helms!(gitlab_app_version_rollback_window, super::gitlab_rollback_window_counts_in_app_versions);

/// The same app-version path from the other chart sources: an OCI registry, whose tags
/// carry no appVersion (the tool reads each chart's config), and a directory of packages
/// (each package's Chart.yaml). Planned from each, walked from the registry.
fn app_versions_from_a_registry_and_a_directory(version: HelmVersion) {
    let bed = Bed::new(version);
    let registry = OciRegistry::start(bed.charts.path(), OciOptions { auth: OciAuth::None, ..OciOptions::default() })
        .expect("start the OCI registry");
    let reference = registry.reference("gitlab");
    bed.install_from(&[], &reference, &["--version", "7.0.0", "--plain-http"], "replicaCount: 1\n");
    let dir = bed.charts.path().to_str().unwrap().to_string();
    let app_path = |plan: &Value| -> Vec<String> {
        plan["hops"].as_array().unwrap().iter().map(|h| h["app"]["to"].as_str().unwrap().to_string()).collect()
    };
    for chart in [reference.as_str(), dir.as_str()] {
        let args =
            ["bsr", "--to", "7.3.0", "--chart", chart, "--plain-http", "--policy", "gitlab", "--plan", "-o", "json"];
        let (stdout, _) = bed.run_expect(&args, 0);
        let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
        assert_eq!(app_path(&plan), ["16.1.7", "16.2.10", "16.3.8"], "{version}: from {chart}: {stdout}");
    }
    let walk = ["bsr", "--to", "7.3.0", "--chart", &reference, "--plain-http", "--policy", "gitlab"];
    let (stdout, _) = bed.run_expect(&[&walk[..], &["--yes", "--snapshot-taken", "-o", "json"]].concat(), 0);
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(report["result"], "completed", "{version}: {stdout}");
    assert_eq!(bed.charts_deployed(), ["gitlab-7.0.0", "gitlab-7.1.0", "gitlab-7.2.1", "gitlab-7.3.0"], "{version}");
    let configs = registry.requests().iter().filter(|r| r.target.contains("/blobs/sha256:")).count();
    assert!(configs >= 4, "{version}: the chart configs were read: {:?}", registry.requests());
}
both_helms!(app_versions_from_other_sources, super::app_versions_from_a_registry_and_a_directory);
