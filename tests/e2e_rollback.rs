//! `helm safe-rollback RELEASE [--to VERSION]` end to end: the real helm 3.19.0 and 4.1.4
//! against the Kubernetes API stand-in (or the cluster of HSU_E2E_KUBECONFIG), charts from
//! the loopback repository, the bed's
//! policies (BSR's `migratedownto`, Sourcegraph's `migrator downgrade` + `drift`, Coder's
//! snapshot restore) observable as ConfigMaps.
//!
//! Every refusal is checked to leave the release untouched: helm's history (descriptions
//! and timestamps included), the user values, and no lock in the ledger.

#[path = "e2e/bed.rs"]
mod bed;

use std::process::Output;

use bed::{Bed, VALUES, bed_policy, yaml_to_json};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

fn sourcegraph_policy() -> String {
    format!("{}/bed/policies/sourcegraph-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

fn coder_policy() -> String {
    format!("{}/bed/policies/coder-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// The plugin as `helm safe-rollback` (helm sets HELM_PLUGIN_NAME; [`Bed::tool`] removes
/// it, so it is set after), with extra environment variables.
fn rollback(bed: &Bed, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = bed.tool();
    cmd.env("HELM_PLUGIN_NAME", "safe-rollback").envs(envs.iter().copied()).args(args);
    cmd.output().expect("run helm-safe-upgrade as safe-rollback")
}

/// [`rollback`] with a checked exit code; returns (stdout, stderr).
fn rb(bed: &Bed, envs: &[(&str, &str)], args: &[&str], code: i32) -> (String, String) {
    let out = rollback(bed, envs, args);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}: helm safe-rollback {args:?} (env {envs:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        bed.version
    );
    (stdout, stderr)
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("one JSON document on stdout ({e}):\n{stdout}"))
}

/// `helm history bsr -o json` as helm prints it (revisions, statuses, charts,
/// descriptions, timestamps).
fn full_history(bed: &Bed) -> Value {
    serde_json::from_str(&bed.env.helm_ok(&["history", "bsr", "--namespace", &bed.ns, "-o", "json"])).unwrap()
}

fn last_description(bed: &Bed) -> String {
    full_history(bed).as_array().unwrap().last().unwrap()["description"].as_str().unwrap().to_string()
}

/// What a refusal must not change.
struct Untouched {
    history: Value,
    values: Value,
    metadata: (Value, Value),
}

fn state(bed: &Bed) -> Untouched {
    let m = bed.metadata();
    Untouched {
        history: full_history(bed),
        values: bed.user_values(),
        metadata: (m["version"].clone(), m["status"].clone()),
    }
}

fn assert_untouched(bed: &Bed, before: &Untouched, what: &str) {
    assert_eq!(full_history(bed), before.history, "{}: {what} changed helm's history", bed.version);
    assert_eq!(bed.user_values(), before.values, "{}: {what} changed the values", bed.version);
    let m = bed.metadata();
    assert_eq!(
        (m["version"].clone(), m["status"].clone()),
        before.metadata,
        "{}: {what} changed the release",
        bed.version
    );
    assert!(
        bed.ledger_record().is_none_or(|l| l["lock"].is_null()),
        "{}: {what} left a lock: {:?}",
        bed.version,
        bed.ledger_record()
    );
}

/// (action, outcome) of every step the run reports, in order.
fn step_outcomes(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {report}"))
        .iter()
        .map(|s| (s["action"].as_str().unwrap().to_string(), s["outcome"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, o)| (a.as_str(), o.as_str())).collect()
}

/// The ConfigMaps in the namespace whose name contains `infix`.
fn configmaps_containing(bed: &Bed, infix: &str) -> Vec<String> {
    bed.list("v1", "configmaps")
        .into_iter()
        .map(|cm| cm["metadata"]["name"].as_str().unwrap().to_string())
        .filter(|n| n.contains(infix))
        .collect()
}

fn configmap_data(bed: &Bed, name: &str) -> Value {
    bed.get("v1", "configmaps", name).unwrap_or_else(|| panic!("{}: ConfigMap {name} exists", bed.version))["data"]
        .clone()
}

/// The plan's one deploy step (a rollback has one hop).
fn deploy_step(plan: &Value) -> Value {
    let hops = plan["hops"].as_array().unwrap_or_else(|| panic!("no hops: {plan}"));
    assert_eq!(hops.len(), 1, "{plan}");
    let deploys: Vec<&Value> =
        hops[0]["steps"].as_array().unwrap().iter().filter(|s| s["action"] == "deploy").collect();
    assert_eq!(deploys.len(), 1, "{plan}");
    deploys[0].clone()
}

fn warnings(plan: &Value) -> Vec<String> {
    plan["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
}

/// A run under `--debug` (which logs every helm process it starts) asked helm for no
/// revision's values: the release read from helm's storage holds them all.
fn assert_no_values_read(stderr: &str) {
    let helm_runs: Vec<&str> = stderr.lines().filter(|l| l.contains("debug: ")).collect();
    assert!(!helm_runs.is_empty(), "--debug logs the helm processes started:\n{stderr}");
    assert!(
        !helm_runs.iter().any(|l| l.contains(" get values ")),
        "no `helm get values` when helm's storage was read:\n{stderr}"
    );
}

fn deployed_at(bed: &Bed, version: &str) {
    let meta = bed.metadata();
    assert_eq!(meta["version"], version, "{}: {meta}", bed.version);
    assert_eq!(meta["status"], "deployed", "{}: {meta}", bed.version);
}

// ---------------------------------------------------------------------------------------
// 1. BSR after a three-hop upgrade: back one minor with migratedownto, after the pods of
// the newer version are gone; without --accept-data-loss an unattended run is refused.

fn bsr_back_one_minor_after_three_hops(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    bed.install("bsr", "1.0.4", VALUES);
    bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    deployed_at(&bed, "1.3.0");

    // --yes alone does not accept the data loss the policy warns of.
    let before = state(&bed);
    let (_, stderr) = rb(&bed, &[], &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 2);
    assert!(stderr.contains("--accept-data-loss"), "{stderr}");
    assert!(stderr.contains("from 1.3.0 to 1.2.6 may lose data"), "{stderr}");
    assert_untouched(&bed, &before, "a rollback without --accept-data-loss");
    assert!(configmaps_containing(&bed, "-migratedownto-").is_empty());

    let started = std::time::Instant::now();
    let (stdout, stderr) = rb(
        &bed,
        &[],
        &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "--accept-data-loss", "-o", "json"],
        0,
    );
    eprintln!("{version}: rollback 1.3.0 → 1.2.6 took {:.1}s", started.elapsed().as_secs_f64());
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(report["at"], "1.2.6", "the newest 1.2.x: {stdout}");
    assert_eq!(report["plan"]["direction"], "rollback", "{stdout}");
    assert_eq!(report["plan"]["from"], "1.3.0");
    assert_eq!(report["plan"]["to"], "1.2.6");
    assert_eq!(report["plan"]["hops"][0]["kind"], "minor-downgrade", "{stdout}");
    assert_eq!(report["plan"]["hops"][0]["procedure"], "migrate-down", "{stdout}");
    assert!(warnings(&report["plan"]).iter().any(|w| w.contains("permanent data loss")), "{stdout}");
    // Deploy 1.2.6, wait until no 1.3.0 pod is left, then migratedownto, then verify.
    assert_eq!(
        pairs(&step_outcomes(&report)),
        [("deploy", "ok"), ("wait-gone", "ok"), ("run", "ok"), ("verify", "ok")],
        "{stdout}"
    );
    assert!(bed.pods_of_version("1.3.0").is_empty(), "1.3.0 pods remain: {:?}", bed.pods_of_version("1.3.0"));
    assert_eq!(bed.server_pods_of_version("1.2.6").len(), 2, "two replicas of 1.2.6");

    // Exactly one down-migration, with 1.2.6's schema, run by the 1.3.0 binary.
    assert_eq!(configmaps_containing(&bed, "-migratedownto-"), ["bsr-migratedownto-240"]);
    let data = configmap_data(&bed, "bsr-migratedownto-240");
    assert_eq!(data["from"], "1.3.0", "{data}");
    assert_eq!(data["to"], "1.2.6", "{data}");
    assert_eq!(data["schema"], "240", "{data}");

    // A redeploy of 1.2.6 (an upgrade in helm's terms), the values exactly the user's.
    deployed_at(&bed, "1.2.6");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0", "bsr-1.2.6"]);
    assert_eq!(bed.server_version_label(), "1.2.6");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "values are exactly what they were");
    assert!(!stdout.contains("s3cret-value") && !stderr.contains("s3cret-value"), "a secret leaked:\n{stderr}");
    // The ledger still knows the database saw 1.3.0, and holds no lock.
    let ledger = bed.ledger_record().expect("a ledger");
    assert_eq!(ledger["newest_ever"], "1.3.0", "{ledger}");
    assert!(ledger["lock"].is_null(), "{ledger}");
}
both_helms!(bsr_one_minor, super::bsr_back_one_minor_after_three_hops);

// ---------------------------------------------------------------------------------------
// 2. The window is measured from the newest version ever deployed, even when helm's
// history no longer holds it (HELM_MAX_HISTORY=2, inherited by the tool's helm).

fn window_holds_when_helm_forgot(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    let env: &[(&str, &str)] = &[("HELM_MAX_HISTORY", "2")];
    bed.install_from(env, "demo/bsr", &["--version", "1.0.4"], VALUES);
    bed.run_env_expect(env, &["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.2.6", "bsr-1.3.0"], "helm keeps two revisions");

    let (stdout, _) = rb(
        &bed,
        env,
        &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "--accept-data-loss", "-o", "json"],
        0,
    );
    let report = json(&stdout);
    assert_eq!(report["at"], "1.2.6", "{stdout}");
    assert_eq!(configmaps_containing(&bed, "-migratedownto-"), ["bsr-migratedownto-240"]);
    deployed_at(&bed, "1.2.6");

    // A patch rollback within 1.2 needs no --accept-data-loss. No revision of 1.2.0 is in
    // helm's history, so it is a redeploy.
    let (stdout, _) =
        rb(&bed, env, &["bsr", "--to", "1.2.0", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-o", "json"], 0);
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}");
    assert_eq!(report["at"], "1.2.0", "{stdout}");
    assert_eq!(report["plan"]["hops"][0]["kind"], "patch-downgrade", "{stdout}");
    assert!(deploy_step(&report["plan"])["revision"].is_null(), "{stdout}");
    assert!(
        warnings(&report["plan"]).iter().any(|w| w.contains("no revision of 1.2.0 is left in helm's history")),
        "{stdout}"
    );
    deployed_at(&bed, "1.2.0");
    let charts = bed.charts_deployed();
    assert!(!charts.iter().any(|c| c == "bsr-1.3.0"), "helm has forgotten 1.3.0: {charts:?}");
    assert_eq!(charts, ["bsr-1.2.6", "bsr-1.2.0"]);
    assert_eq!(bed.ledger_record().unwrap()["newest_ever"], "1.3.0", "the ledger has not forgotten");

    // 1.1.9 is two minors below 1.3.0: refused, though helm's history alone would allow it.
    let before = state(&bed);
    let (stdout, _) = rb(
        &bed,
        env,
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--yes",
            "--accept-data-loss",
            "-o",
            "json",
        ],
        3,
    );
    let refusal = json(&stdout);
    assert_eq!(refusal["refused"]["rule"], "downgrade-window", "{stdout}");
    let message = refusal["refused"]["message"].as_str().unwrap();
    assert!(message.contains("1.1.9 is 2 minors below 1.3.0, the newest version ever deployed"), "{message}");
    assert!(refusal["refused"]["supported"].as_str().unwrap().contains("roll back no further than 1.2.0"), "{stdout}");
    assert_untouched(&bed, &before, "the downgrade-window refusal");
    deployed_at(&bed, "1.2.0");
    assert_eq!(configmaps_containing(&bed, "-migratedownto-"), ["bsr-migratedownto-240"], "no second down-migration");
}
both_helms!(window_from_newest_ever, super::window_holds_when_helm_forgot);

// ---------------------------------------------------------------------------------------
// 3. Patch rollback: `helm rollback REV` when that revision ran the target with the same
// values, a redeploy with the current values when they differ.

fn patch_rollback_by_revision_or_redeploy(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    bed.install("bsr", "1.2.0", VALUES);
    bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    deployed_at(&bed, "1.2.6");

    // --plan: helm rollback to revision 1, and it says why. Nothing changes. Revision 1's
    // values come with the release read from helm's storage: no `helm get values`.
    let before = state(&bed);
    let (stdout, stderr) = rb(
        &bed,
        &[],
        &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-o", "json", "--plan", "--debug"],
        0,
    );
    assert_no_values_read(&stderr);
    let plan = json(&stdout);
    assert_eq!(plan["to"], "1.2.0", "{stdout}");
    assert_eq!(plan["hops"][0]["kind"], "patch-downgrade", "{stdout}");
    assert_eq!(deploy_step(&plan)["revision"], 1, "{stdout}");
    assert!(
        warnings(&plan)
            .iter()
            .any(|w| w.contains("revision 1 ran 1.2.0 with the same values") && w.contains("helm rollback")),
        "{stdout}"
    );
    assert!(!warnings(&plan).iter().any(|w| w.contains("data loss")), "a patch rollback loses no data: {stdout}");
    assert_untouched(&bed, &before, "--plan");

    // For real: no --accept-data-loss needed.
    let (stdout, stderr) =
        rb(&bed, &[], &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-o", "json"], 0);
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(report["at"], "1.2.0");
    assert_eq!(pairs(&step_outcomes(&report)), [("deploy", "ok"), ("verify", "ok")], "{stdout}");
    deployed_at(&bed, "1.2.0");
    assert_eq!(last_description(&bed), "Rollback to 1", "{}", full_history(&bed));
    assert_eq!(bed.charts_deployed(), ["bsr-1.2.0", "bsr-1.2.6", "bsr-1.2.0"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
    assert_eq!(bed.server_version_label(), "1.2.0");
    assert!(configmaps_containing(&bed, "-migratedownto-").is_empty(), "no down-migration within a minor");

    // The values changed since: a redeploy that keeps the change.
    bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.2.6",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--set",
            "config.logLevel=debug",
            "--yes",
        ],
        0,
    );
    assert_eq!(bed.user_values()["config"]["logLevel"], "debug");
    let (stdout, stderr) = rb(
        &bed,
        &[],
        &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-o", "json", "--plan", "--debug"],
        0,
    );
    assert_no_values_read(&stderr);
    let plan = json(&stdout);
    assert_eq!(plan["to"], "1.2.0", "{stdout}");
    assert!(deploy_step(&plan)["revision"].is_null(), "a redeploy, not helm rollback: {stdout}");
    assert!(
        warnings(&plan).iter().any(|w| w.contains("revision 3 ran 1.2.0 with other values") && w.contains("keeps the changes made since")),
        "{stdout}"
    );
    let (stdout, _) = rb(&bed, &[], &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-o", "json"], 0);
    assert_eq!(json(&stdout)["at"], "1.2.0", "{stdout}");
    deployed_at(&bed, "1.2.0");
    assert!(!last_description(&bed).starts_with("Rollback"), "{}", full_history(&bed));
    let mut expected = yaml_to_json(VALUES);
    expected["config"]["logLevel"] = Value::from("debug");
    assert_eq!(bed.user_values(), expected, "the values set since are kept");
    assert_eq!(bed.charts_deployed(), ["bsr-1.2.0", "bsr-1.2.6", "bsr-1.2.0", "bsr-1.2.6", "bsr-1.2.0"]);
}
both_helms!(patch_rollback, super::patch_rollback_by_revision_or_redeploy);

// ---------------------------------------------------------------------------------------
// 4. A failed revision is never the default target.

fn failed_revision_is_never_the_target(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    bed.install("bsr", "1.0.4", VALUES);
    let values = bed.values_file(VALUES);
    let values = values.to_str().unwrap();
    let failed = bed.helm_with(
        &[],
        &[
            "upgrade",
            "bsr",
            "demo/bsr",
            "--version",
            "1.1.0",
            "--namespace",
            &bed.ns,
            "-f",
            values,
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.0",
            "--wait",
            "--timeout",
            &bed.fail_timeout("3s"),
        ],
        None,
    );
    assert!(!failed.status.success(), "the broken upgrade was meant to fail");
    bed.helm_with_ok(
        &[],
        &[
            "upgrade",
            "bsr",
            "demo/bsr",
            "--version",
            "1.1.9",
            "--namespace",
            &bed.ns,
            "-f",
            values,
            "--wait",
            "--timeout",
            "60s",
        ],
        None,
    );
    let history = bed.history();
    assert_eq!(history[1], (2, "failed".to_string(), "bsr-1.1.0".to_string()), "{history:?}");
    assert_eq!(history[2], (3, "deployed".to_string(), "bsr-1.1.9".to_string()), "{history:?}");

    let before = state(&bed);
    let (stdout, _) = rb(&bed, &[], &["bsr", "--policy", &policy, "--chart", "demo/bsr", "--plan", "-o", "json"], 0);
    let plan = json(&stdout);
    assert_eq!(plan["to"], "1.0.4", "not the failed 1.1.0: {stdout}");
    assert_eq!(plan["hops"][0]["procedure"], "migrate-down", "{stdout}");
    assert_untouched(&bed, &before, "--plan");

    let (stdout, stderr) = rb(
        &bed,
        &[],
        &["bsr", "--policy", &policy, "--chart", "demo/bsr", "--yes", "--accept-data-loss", "-o", "json"],
        0,
    );
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(report["at"], "1.0.4");
    deployed_at(&bed, "1.0.4");
    assert_eq!(configmaps_containing(&bed, "-migratedownto-"), ["bsr-migratedownto-210"]);
    let data = configmap_data(&bed, "bsr-migratedownto-210");
    assert_eq!(
        (data["from"].as_str(), data["to"].as_str(), data["schema"].as_str()),
        (Some("1.1.9"), Some("1.0.4"), Some("210")),
        "{data}"
    );
    assert!(bed.pods_of_version("1.1.9").is_empty() && bed.pods_of_version("1.1.0").is_empty());
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(failed_revision, super::failed_revision_is_never_the_target);

// ---------------------------------------------------------------------------------------
// 5. Sourcegraph: stop the services, the newer migrator's downgrade, redeploy, drift.

const SG_VALUES: &str = "frontend:\n  env:\n    - name: SRC_LOG_LEVEL\n      value: info\n";

fn sourcegraph_migrator_downgrade(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = sourcegraph_policy();
    // The bed installs every chart as release `bsr` (in namespace `bed.ns`).
    bed.install("sourcegraph", "5.2.7", SG_VALUES);
    bed.run_expect(
        &["bsr", "--to", "5.3.0", "--chart", "demo/sourcegraph", "--policy", &policy, "--snapshot-taken", "--yes"],
        0,
    );
    deployed_at(&bed, "5.3.0");

    let (stdout, stderr) = rb(
        &bed,
        &[],
        &["bsr", "--chart", "demo/sourcegraph", "--policy", &policy, "--yes", "--accept-data-loss", "-o", "json"],
        0,
    );
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(report["at"], "5.2.7", "{stdout}");
    assert_eq!(report["plan"]["hops"][0]["procedure"], "migrator-downgrade", "{stdout}");
    let steps = report["steps"].as_array().unwrap();
    let order: Vec<(&str, &str, &str)> = steps
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["detail"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order.iter().map(|(a, _, o)| (*a, *o)).collect::<Vec<_>>(),
        [("run", "ok"), ("run", "ok"), ("deploy", "ok"), ("run", "ok"), ("verify", "ok")],
        "{stdout}"
    );
    assert!(order[0].1.contains("stop services"), "{stdout}");
    assert!(order[1].1.contains("migrator downgrade"), "{stdout}");
    assert!(order[3].1.contains("migrator drift"), "{stdout}");
    assert!(
        warnings(&report["plan"]).iter().any(|w| w.contains("out of band migrations which are irreversible")),
        "{stdout}"
    );

    let down = configmap_data(&bed, "bsr-migrator-downgrade");
    assert_eq!(down["from"], "5.3.0", "{down}");
    assert_eq!(down["to"], "5.2.7", "{down}");
    assert_eq!(down["migrator"], "5.3.0", "the newer migrator: {down}");
    assert_eq!(configmap_data(&bed, "bsr-migrator-drift")["version"], "5.2.7");

    deployed_at(&bed, "5.2.7");
    let frontend = bed.get("apps/v1", "deployments", "bsr-frontend").expect("the frontend Deployment");
    assert_eq!(frontend["spec"]["replicas"], 2, "the redeploy restores the replicas: {}", frontend["spec"]);
    assert_eq!(frontend["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"], "5.2.7");
    assert_eq!(bed.user_values(), yaml_to_json(SG_VALUES));
    assert!(bed.ledger_record().unwrap()["lock"].is_null());
}
both_helms!(sourcegraph, super::sourcegraph_migrator_downgrade);

// ---------------------------------------------------------------------------------------
// 6. Coder: going back is restoring the snapshot recorded while the target ran.

const CODER_VALUES: &str = "coder:\n  env:\n    - name: CODER_ACCESS_URL\n      value: https://coder.bed.example\n";

fn coder_restores_the_snapshot(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = coder_policy();
    bed.install("coder", "2.15.1", CODER_VALUES);
    bed.run_expect(
        &["bsr", "--to", "2.16.0", "--chart", "demo/coder", "--policy", &policy, "--snapshot-taken", "--yes"],
        0,
    );
    deployed_at(&bed, "2.16.0");
    let ledger = bed.ledger_record().expect("a ledger");
    let snapshots: Vec<&str> =
        ledger["snapshots"].as_array().unwrap().iter().map(|s| s["version"].as_str().unwrap()).collect();
    assert_eq!(snapshots, ["2.15.1"], "{ledger}");

    // The built-in preset restores by hand: unattended, refused.
    let before = state(&bed);
    let (stdout, _) = rb(
        &bed,
        &[],
        &["bsr", "--chart", "demo/coder", "--policy", "coder", "--yes", "--accept-data-loss", "-o", "json"],
        3,
    );
    let refusal = json(&stdout);
    assert_eq!(refusal["refused"]["rule"], "restore-needs-a-person", "{stdout}");
    assert!(refusal["refused"]["message"].as_str().unwrap().contains("2.15.1"), "{stdout}");
    assert_untouched(&bed, &before, "the restore-needs-a-person refusal");
    assert!(configmaps_containing(&bed, "-restored-").is_empty());

    // The bed's policy restores by command.
    let (stdout, stderr) = rb(
        &bed,
        &[],
        &[
            "bsr",
            "--to",
            "2.15.1",
            "--chart",
            "demo/coder",
            "--policy",
            &policy,
            "--yes",
            "--accept-data-loss",
            "-o",
            "json",
        ],
        0,
    );
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(report["at"], "2.15.1");
    assert_eq!(report["plan"]["strategy"], "restore", "{stdout}");
    assert_eq!(report["plan"]["hops"][0]["kind"], "restore", "{stdout}");
    assert!(
        warnings(&report["plan"]).iter().any(|w| w.contains("restores the snapshot taken while 2.15.1 was deployed")),
        "{stdout}"
    );
    assert_eq!(
        pairs(&step_outcomes(&report)),
        [("run", "ok"), ("run", "ok"), ("deploy", "ok"), ("verify", "ok")],
        "{stdout}"
    );
    assert_eq!(configmaps_containing(&bed, "-restored-"), ["bsr-restored-2.15.1"]);
    let data = configmap_data(&bed, "bsr-restored-2.15.1");
    assert_eq!((data["from"].as_str(), data["to"].as_str()), (Some("2.16.0"), Some("2.15.1")), "{data}");
    deployed_at(&bed, "2.15.1");
    let coder = bed.get("apps/v1", "deployments", "bsr-coder").expect("the coder Deployment");
    assert_eq!(coder["spec"]["replicas"], 1, "the redeploy restores the replicas: {}", coder["spec"]);
    assert_eq!(bed.user_values(), yaml_to_json(CODER_VALUES));

    // 2.14.3 was never deployed and no snapshot was taken while it ran: refused.
    let before = state(&bed);
    let (stdout, _) = rb(
        &bed,
        &[],
        &[
            "bsr",
            "--to",
            "2.14.3",
            "--chart",
            "demo/coder",
            "--policy",
            &policy,
            "--yes",
            "--accept-data-loss",
            "-o",
            "json",
        ],
        3,
    );
    let refusal = json(&stdout);
    assert_eq!(refusal["refused"]["rule"], "downgrade-unsupported", "{stdout}");
    let supported = refusal["refused"]["supported"].as_str().unwrap();
    assert!(supported.contains("no snapshot was recorded") && supported.contains("taken while 2.14.3 ran"), "{stdout}");
    assert_untouched(&bed, &before, "the no-snapshot refusal");
    assert_eq!(configmaps_containing(&bed, "-restored-"), ["bsr-restored-2.15.1"], "no second restore");
}
both_helms!(coder, super::coder_restores_the_snapshot);

// ---------------------------------------------------------------------------------------
// 7. A rollback whose deploy fails is left for a person, who follows the printed advice:
// `helm safe-rollback RELEASE --to TARGET` again. That must work on the failed release.

fn failed_rollback_can_be_run_again(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    bed.install("bsr", "1.1.9", VALUES);
    bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    // An operator's --set applies to the redeploy: a broken image makes it fail.
    let (stdout, _) = rb(
        &bed,
        &[],
        &[
            "bsr",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--set",
            "image.tag=broken",
            "--timeout",
            &bed.fail_timeout("3s"),
            "--yes",
            "--accept-data-loss",
            "-o",
            "json",
        ],
        1,
    );
    let report = json(&stdout);
    assert_eq!(report["result"], "failed", "{stdout}");
    let next = report["next_steps"].as_str().unwrap();
    assert!(next.contains("helm safe-rollback bsr --to 1.1.9"), "{next}");
    assert_eq!(pairs(&step_outcomes(&report)), [("deploy", "failed")], "{stdout}");
    assert!(configmaps_containing(&bed, "-migratedownto-").is_empty(), "nothing ran after the failed deploy");
    assert_eq!(bed.metadata()["status"], "failed");
    assert!(bed.ledger_record().unwrap()["lock"].is_null(), "a failed run gives the lock back");

    // The advice, followed: the release comes back deployed at 1.1.9, down-migrated once.
    let (stdout, stderr) = rb(
        &bed,
        &[],
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--yes",
            "--accept-data-loss",
            "-o",
            "json",
        ],
        0,
    );
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    deployed_at(&bed, "1.1.9");
    assert_eq!(configmaps_containing(&bed, "-migratedownto-"), ["bsr-migratedownto-222"]);
    assert!(bed.pods_of_version("1.2.6").is_empty());
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(failed_rollback_again, super::failed_rollback_can_be_run_again);

// ---------------------------------------------------------------------------------------
// 8. An operator's --set on a patch rollback: `helm rollback REV` would drop it, so the
// rollback redeploys with it.

fn patch_rollback_keeps_the_operators_set(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    bed.install("bsr", "1.2.0", VALUES);
    bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    let args =
        ["bsr", "--chart", "demo/bsr", "--policy", &policy, "--set", "config.logLevel=debug", "--yes", "-o", "json"];
    let (stdout, _) = rb(&bed, &[], &[&args[..], &["--plan"]].concat(), 0);
    assert!(deploy_step(&json(&stdout))["revision"].is_null(), "helm rollback cannot apply --set: {stdout}");
    let (stdout, _) = rb(&bed, &[], &args, 0);
    assert_eq!(json(&stdout)["at"], "1.2.0", "{stdout}");
    deployed_at(&bed, "1.2.0");
    assert_eq!(bed.user_values()["config"]["logLevel"], "debug", "the operator's --set was applied");
}
both_helms!(patch_rollback_with_set, super::patch_rollback_keeps_the_operators_set);

// ---------------------------------------------------------------------------------------
// 9. Two failures in a row: an upgrade to 1.3.0 fails after its migration hook ran, then a
// redeploy of 1.2.6 fails too. The release is failed at 1.2.6, but the database may hold
// 1.3.0's schema: safe-rollback leaves from 1.3.0 (the newest version tried since the last
// good revision), back to 1.2.6 with 1.2.6's schema, not "nothing older" or two minors down.

fn failed_twice_is_left_from_the_newest_version_tried(version: HelmVersion) {
    let bed = Bed::new(version);
    let policy = bed_policy();
    bed.install("bsr", "1.2.6", VALUES);
    for target in ["1.3.0", "1.2.6"] {
        let tag = format!("migration.imageTag={target}");
        let args = [
            "upgrade",
            "bsr",
            "demo/bsr",
            "--version",
            target,
            "--namespace",
            &bed.ns,
            "--reuse-values",
            "--set",
            "image.tag=broken",
            "--set",
            &tag,
            "--wait",
            "--timeout",
            &bed.fail_timeout("3s"),
        ];
        let out = bed.helm_with(&[], &args, None);
        assert!(!out.status.success(), "the broken upgrade to {target} was meant to fail");
    }
    let history: Vec<String> = bed.history().iter().map(|(_, status, _)| status.clone()).collect();
    // helm leaves the install marked deployed after failed upgrades; the release is failed.
    assert_eq!(history, ["deployed", "failed", "failed"]);
    assert_eq!(bed.metadata()["status"], "failed");
    assert_eq!(bed.charts_deployed(), ["bsr-1.2.6", "bsr-1.3.0", "bsr-1.2.6"]);

    let args = ["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "--accept-data-loss", "-o", "json"];
    let (stdout, _) = rb(&bed, &[], &[&args[..], &["--plan"]].concat(), 0);
    let plan = json(&stdout);
    assert_eq!((plan["from"].as_str(), plan["to"].as_str()), (Some("1.3.0"), Some("1.2.6")), "{stdout}");
    let (stdout, stderr) = rb(&bed, &[], &args, 0);
    let report = json(&stdout);
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(
        pairs(&step_outcomes(&report)),
        [("deploy", "ok"), ("wait-gone", "ok"), ("run", "ok"), ("verify", "ok")],
        "{stdout}"
    );
    deployed_at(&bed, "1.2.6");
    assert_eq!(configmaps_containing(&bed, "-migratedownto-"), ["bsr-migratedownto-240"]);
    assert!(bed.pods_of_version("1.3.0").is_empty());
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "the last good revision's values, without the broken tag");
}
both_helms!(failed_twice, super::failed_twice_is_left_from_the_newest_version_tried);
