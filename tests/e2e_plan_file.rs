//! A reviewed plan file end to end, on the real helm 3.19.0 and 4.1.4 against the
//! Kubernetes API stand-in: `--plan -o json > plan.json`, then `--execute plan.json`
//! walks exactly it, or refuses (stale: exit 3; not a plan or edited: exit 2) with the
//! release untouched; a rollback's plan likewise, through `helm safe-rollback --execute`.

#[path = "e2e/bed.rs"]
mod bed;

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

/// `--plan -o json` for `args`, written to a file in the bed; returns its path and the
/// plan.
fn plan_file(bed: &Bed, args: &[&str]) -> (std::path::PathBuf, Value) {
    let mut all = vec!["bsr", "--chart", "demo/bsr", "--plan", "-o", "json"];
    all.extend_from_slice(args);
    let (stdout, _) = bed.run_expect(&all, 0);
    let path = bed.env.dir().join("plan.json");
    std::fs::write(&path, &stdout).unwrap();
    (path, serde_json::from_str(&stdout).expect("one JSON document"))
}

fn hops(plan: &Value) -> Vec<(String, String)> {
    let hops = plan["hops"].as_array().unwrap().iter();
    hops.map(|h| (h["from"].as_str().unwrap().to_string(), h["to"].as_str().unwrap().to_string())).collect()
}

fn reviewed_plan_is_walked(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (file, plan) = plan_file(&bed, &["--to", "1.3.0"]);
    // The document: schema, what it was made from, each hop's digests, its own digest.
    assert_eq!(plan["schema"], 1);
    assert_eq!(plan["made_from"]["revision"], 1);
    assert_eq!(plan["made_from"]["status"], "deployed");
    assert_eq!(plan["made_from"]["chart_reference"], "demo/bsr");
    assert!(plan["made_from"]["values_digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(plan["sources"]["policy_digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(plan["hops"].as_array().unwrap().iter().all(|h| h["check"]["chart_digest"].is_string()));
    assert!(plan["digest"].as_str().unwrap().starts_with("sha256:"));
    let text = std::fs::read_to_string(&file).unwrap();
    // No secret: each hop's view of its values masks them (for the review), and shows
    // the rest as it will be deployed.
    assert!(!text.contains("s3cret-value"), "a secret in the plan file");
    let view = &plan["hops"][0]["check"]["values_view"];
    assert_eq!(view["postgres"]["password"], "***", "{view}");
    assert_eq!(view["postgres"]["host"], "db.prod.internal", "{view}");
    assert_eq!(bed.history().len(), 1, "--plan changed nothing");
    // Executed without the release or the chart: both come from the file.
    let (stdout, _) = bed.run_expect(&["--execute", file.to_str().unwrap(), "--yes", "-o", "json"], 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "completed", "{stdout}");
    assert_eq!(hops(&report["plan"]), hops(&plan), "exactly the reviewed path");
    assert_eq!(report["plan"]["digest"], plan["digest"], "the reviewed plan itself was walked");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "values are exactly what they were");
    // Executed again: the release moved on, so the plan is stale.
    let (_, stderr) = bed.run_expect(&["--execute", file.to_str().unwrap(), "--yes"], 3);
    assert!(
        stderr.contains("plan-stale") && stderr.contains("the release's revision: 1 when planned, 4 now"),
        "{stderr}"
    );
}
both_helms!(walked, super::reviewed_plan_is_walked);

fn a_change_out_of_band_makes_it_stale(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (file, _) = plan_file(&bed, &["--to", "1.2.6"]);
    let ns = bed.ns.clone();
    bed.helm_with_ok(
        &[],
        &["upgrade", "bsr", "demo/bsr", "--version", "1.0.4", "--reuse-values", "--set", "replicaCount=5", "-n", &ns],
        None,
    );
    let before = bed.history();
    let (_, stderr) = bed.run_expect(&["--execute", file.to_str().unwrap(), "--yes"], 3);
    assert!(stderr.contains("rule:      plan-stale"), "{stderr}");
    assert!(stderr.contains("the release's revision: 1 when planned, 2 now"), "{stderr}");
    assert!(stderr.contains("the release's user values: sha256:"), "{stderr}");
    assert!(stderr.contains("hop 1.0.4 → 1.1.9: values digest"), "{stderr}");
    assert_eq!(bed.history(), before, "nothing changed");
}
both_helms!(stale, super::a_change_out_of_band_makes_it_stale);

fn edited_or_foreign_files_are_refused(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (file, mut plan) = plan_file(&bed, &["--to", "1.3.0"]);
    plan["hops"][0]["to"] = Value::from("1.1.8");
    std::fs::write(&file, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let (_, stderr) = bed.run_expect(&["--execute", file.to_str().unwrap(), "--yes"], 2);
    assert!(stderr.contains("was changed after it was made"), "{stderr}");
    std::fs::write(&file, "replicaCount: 3\n").unwrap();
    let (stdout, _) = bed.run_expect(&["--execute", file.to_str().unwrap(), "--yes", "-o", "json"], 2);
    assert!(stdout.contains("is not JSON"), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "nothing changed");
}
both_helms!(refused_files, super::edited_or_foreign_files_are_refused);

fn the_operators_values_must_be_the_same(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (file, plan) = plan_file(&bed, &["--to", "1.1.9", "--set", "replicaCount=3"]);
    assert!(plan["made_from"]["overrides_digest"].is_string());
    let path = file.to_str().unwrap();
    let (_, stderr) = bed.run_expect(&["--execute", path, "--yes"], 3);
    assert!(stderr.contains("the operator's values (-f/--set*): sha256:"), "{stderr}");
    assert!(stderr.contains("none now"), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "nothing changed");
    // With the same --set: walked, the value set.
    bed.run_expect(&["--execute", path, "--yes", "--set", "replicaCount=3"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    assert_eq!(bed.user_values()["replicaCount"], 3);
}
both_helms!(overrides, super::the_operators_values_must_be_the_same);

/// `helm safe-rollback` as helm starts it (its plugin name), with `args`.
fn rollback(bed: &Bed, args: &[&str]) -> std::process::Output {
    bed.tool().env("HELM_PLUGIN_NAME", "safe-rollback").args(args).output().expect("run helm-safe-upgrade")
}

/// A reviewed rollback: `helm safe-rollback --plan -o json`, then `helm safe-rollback
/// --execute` walks the policy's down-migration exactly as reviewed; the other command
/// refuses the file.
fn reviewed_rollback_is_walked(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed::bed_policy();
    let up = ["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--snapshot-taken", "--yes"];
    bed.run_expect(&up, 0);
    let out = rollback(&bed, &["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--plan", "-o", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{version}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(plan["direction"], "rollback", "{version}: {stdout}");
    assert_eq!(hops(&plan), [("1.2.6".to_string(), "1.1.9".to_string())], "{version}");
    let file = bed.env.dir().join("rollback-plan.json");
    std::fs::write(&file, &stdout).unwrap();
    let file = file.to_str().unwrap();

    // The upgrade command does not take a rollback's plan.
    let (_, stderr) = bed.run_expect(&["--execute", file, "--yes"], 2);
    assert!(stderr.contains("is a plan for `helm safe-rollback`, not `helm safe-upgrade`"), "{version}: {stderr}");
    // Unattended, the policy's data-loss warning must be accepted, as for any rollback.
    let refused = rollback(&bed, &["--execute", file, "--yes"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{version}: {said}");
    assert!(said.contains("pass --accept-data-loss with --yes"), "{version}: {said}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"], "{version}: nothing changed");

    let done = rollback(&bed, &["--execute", file, "--yes", "--accept-data-loss", "-o", "json"]);
    let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
    assert_eq!(done.status.code(), Some(0), "{version}: {stdout}{}", String::from_utf8_lossy(&done.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "completed", "{version}: {stdout}");
    assert_eq!(report["plan"]["digest"], plan["digest"], "{version}: the reviewed plan itself was walked");
    assert_eq!(bed.charts_deployed().last().map(String::as_str), Some("bsr-1.1.9"), "{version}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "{version}: values are exactly what they were");
}
both_helms!(rollback_walked, super::reviewed_rollback_is_walked);
