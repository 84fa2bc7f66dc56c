//! `helm safe-upgrade RELEASE --to VERSION` end to end: the real helm 3.19.0 and 4.1.4
//! against the Kubernetes API stand-in (or the cluster of HSU_E2E_KUBECONFIG), charts from
//! the loopback repository.

#[path = "e2e/bed.rs"]
mod bed;

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

fn three_hops_carry_values_exactly(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes", "-o", "json"], 0);
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(report["result"], "completed", "{stdout}");
    assert_eq!(report["at"], "1.3.0");
    let path: Vec<&str> =
        report["plan"]["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(path, ["1.1.9", "1.2.6", "1.3.0"]);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
    let statuses: Vec<String> = bed.history().into_iter().map(|(_, s, _)| s).collect();
    assert_eq!(statuses, ["superseded", "superseded", "superseded", "deployed"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "values are exactly what they were");
    assert_eq!(bed.server_version_label(), "1.3.0");
    // Every step reported, each with a duration.
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6, "{stdout}");
    assert!(steps.iter().all(|s| s["outcome"] == "ok" && s["duration_ms"].is_u64()));
    // The backup is private and holds the values as they were.
    let backup = std::path::PathBuf::from(report["backup"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o700);
    for file in ["values.json", "manifest.yaml", "metadata.json"] {
        let meta = std::fs::metadata(backup.join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(backup.join("values.json")).unwrap()).unwrap();
    assert_eq!(saved, yaml_to_json(VALUES));
    // No secret value reaches the output.
    assert!(!stdout.contains("s3cret-value") && !stderr.contains("s3cret-value"), "a secret leaked:\n{stderr}");
    // A second run is a no-op and says so.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 0);
    assert!(stdout.contains("1.3.0"), "{stdout}");
    assert_eq!(bed.history().len(), 4);
}
both_helms!(three_hops, super::three_hops_carry_values_exactly);

fn refusals_change_nothing(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let before = bed.history();
    // A major: refused by the policy, with the supported alternative.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "2.0.0", "--chart", "demo/bsr", "--yes", "-o", "json"], 3);
    let refusal: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refusal["refused"]["rule"], "major");
    assert_eq!(refusal["refused"]["supported"], "upgrade to 1.4.1, the newest 1.x");
    // A chart of another name.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/coder", "--yes"], 2);
    assert!(stderr.contains("is chart \"coder\", but release bsr runs chart \"bsr\""), "{stderr}");
    // A version the source does not offer.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.9", "--chart", "demo/bsr", "--yes"], 2);
    assert!(stderr.contains("1.2.9 is not available") && stderr.contains("1.2.0, 1.2.6"), "{stderr}");
    // An unknown release.
    let (_, stderr) = bed.run_expect(&["nope", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"], 2);
    assert!(stderr.contains(&format!("release \"nope\" not found in namespace \"{}\"", bed.ns)), "{stderr}");
    // No terminal and no --yes: refused instead of hanging on a prompt.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr"], 2);
    assert!(stderr.contains("stdin is not a terminal") && stderr.contains("--yes"), "{stderr}");
    // --plan prints the plan and changes nothing.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"], 0);
    assert!(stdout.contains("1.0.4  1.1.9  minor"), "{stdout}");
    assert_eq!(bed.history(), before, "a refusal left a new revision");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(refusals, super::refusals_change_nothing);

fn fast_path_uses_maintenance_mode_and_leaves_no_override(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // The policy needs a snapshot and has no command: unattended, that is refused up front.
    let (stdout, _) =
        bed.run_expect(&["bsr", "--to", "1.4.1", "--fast-path", "--chart", "demo/bsr", "--yes", "-o", "json"], 3);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["refused"]["rule"], "snapshot");
    assert_eq!(bed.history().len(), 1);

    bed.run_expect(&["bsr", "--to", "1.4.1", "--fast-path", "--snapshot-taken", "--chart", "demo/bsr", "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.0.4", "bsr-1.4.1"]);
    let during: Value = serde_json::from_str(&bed.env.helm_ok(&[
        "get",
        "values",
        "bsr",
        "--namespace",
        &bed.ns,
        "--revision",
        "2",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(during["maintenance"], true, "revision 2 ran in maintenance mode");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "maintenance is gone at the end");
    let env = bed.server()["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let maintenance =
        env.as_array().unwrap().iter().find(|e| e["name"] == "BSR_MAINTENANCE").map(|e| e["value"].clone());
    assert_eq!(maintenance, Some(Value::from("false")), "the server left maintenance mode: {env}");
    assert_eq!(bed.server_version_label(), "1.4.1");
}
both_helms!(fast_path, super::fast_path_uses_maintenance_mode_and_leaves_no_override);
