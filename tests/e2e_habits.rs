//! Helm users' habits, typed through helm on a terminal (the installed plugin started by
//! real helm 3.19.0 and 4.1.4 in a pty): what helm itself would accept either works the
//! same way here or is refused with the flag to use instead, before anything changes.

#[path = "e2e/bed.rs"]
mod bed;
#[path = "e2e/pty.rs"]
mod pty;

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::HelmVersion;
use pty::{Pty, bed_policy_path as policy, helm_plugin_error};

/// `helm safe-upgrade ARGS` on a terminal, to its end: (output, exit code).
fn session(bed: &Bed, plugin: &str, args: &[&str]) -> (String, i32) {
    Pty::helm(bed, plugin, args).finish()
}

/// helm sets HELM_NAMESPACE, HELM_DEBUG, … for every plugin: the plugin's own listing
/// flags must not conflict with them.
fn listing_the_policies_through_helm(version: HelmVersion) {
    let bed = Bed::new(version);
    let (out, code) = session(&bed, "safe-upgrade", &["--list-policies"]);
    assert_eq!(code, 0, "{version}: {out}");
    assert!(out.contains("bsr") && out.contains("sourcegraph") && out.contains("coder"), "{version}: {out}");
    let (out, code) = session(&bed, "safe-upgrade", &["--show-policy", "bsr"]);
    assert_eq!(code, 0, "{version}: {out}");
    assert!(out.contains("name: bsr") && out.contains("catalog:"), "{version}: {out}");
    let (out, code) = session(&bed, "safe-rollback", &["--show-policy", "coder"]);
    assert_eq!(code, 0, "{version}: {out}");
    assert!(out.contains("name: coder"), "{version}: {out}");
}
both_helms!(list_and_show_policies, super::listing_the_policies_through_helm);

/// `--version`, a positional chart, `--dry-run`, `--to MINOR`: each either does what the
/// operator meant or says what to type, and changes nothing.
fn helm_habits_get_the_flag_to_use(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    let (out, code) = session(&bed, "safe-upgrade", &["bsr", "--version", "1.2.6", "--chart", "demo/bsr"]);
    assert_eq!(code, 2, "{version}: {out}");
    assert!(out.contains("--version is not a flag of this tool"), "{version}: {out}");
    assert!(out.contains("name the target with --to 1.2.6") && out.contains("--tool-version"), "{version}: {out}");
    let (out, code) = session(&bed, "safe-upgrade", &["--tool-version"]);
    assert_eq!(code, 0, "{version}: {out}");
    assert!(out.contains(&format!("safe-upgrade {}", env!("CARGO_PKG_VERSION"))), "{version}: {out}");
    // helm upgrade RELEASE CHART: the chart is a flag here.
    let (out, code) = session(&bed, "safe-upgrade", &["bsr", "demo/bsr", "--to", "1.2.6"]);
    assert_eq!(code, 2, "{version}: {out}");
    assert!(out.contains("--chart demo/bsr"), "{version}: {out}");
    // --dry-run is --plan.
    let (out, code) = session(
        &bed,
        "safe-upgrade",
        &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--dry-run"],
    );
    assert_eq!(code, 0, "{version}: {out}");
    assert!(out.contains("HOP  FROM   TO") && out.contains("1.1.9  1.2.6"), "{version}: {out}");
    // A minor names the versions of it on offer.
    let (out, code) =
        session(&bed, "safe-upgrade", &["bsr", "--to", "1.2", "--chart", "demo/bsr", "--policy", &policy]);
    assert_eq!(code, 2, "{version}: {out}");
    assert!(out.contains("--to 1.2 names a minor, not a version") && out.contains("--to 1.2.6"), "{version}: {out}");
    assert!(out.trim_end().ends_with(&helm_plugin_error("safe-upgrade")), "{version}: {out}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "{version}: nothing changed");
}
both_helms!(habits, super::helm_habits_get_the_flag_to_use);

/// `helm safe-rollback RELEASE REVISION`, as `helm rollback` takes it: the revision picks
/// the version and the values it ran with, through the policy; a failed or pruned revision
/// is refused.
fn rollback_to_a_revision_number(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    let (out, code) = session(&bed, "safe-rollback", &["bsr", "9", "--chart", "demo/bsr"]);
    assert_eq!(code, 2, "{version}: {out}");
    assert!(out.contains("revision 9 of bsr is not in helm's history (it keeps 1, 2)"), "{version}: {out}");
    let mut pty = Pty::helm(&bed, "safe-rollback", &["bsr", "1", "--chart", "demo/bsr"]);
    let plan = pty.expect("Type the release name (bsr) to go on, or nothing to stop");
    assert!(plan.contains("rollback bsr 1.1.9 → 1.0.4"), "{version}: {plan}");
    assert!(plan.contains("going back to revision 1: 1.0.4 with the values it ran with"), "{version}: {plan}");
    pty.answer("bsr");
    let (out, code) = pty.finish();
    assert_eq!(code, 0, "{version}: {out}");
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.0.4");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(rollback_revision, super::rollback_to_a_revision_number);

/// `helm safe-rollback RELEASE REVISION` to a revision that failed is refused with what to
/// do instead, and so is one helm pruned (`--history-max`); neither changes anything.
fn rollback_to_a_failed_or_pruned_revision_is_refused(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (policy, timeout) = (policy(), bed.fail_timeout("4s"));
    // A hop that fails (an image that never starts) and is brought back: its revision
    // stays in helm's history as failed.
    bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--yes",
            "--timeout",
            &timeout,
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
        ],
        4,
    );
    let history = bed.history();
    let failed = history.iter().find(|(_, status, _)| status == "failed").unwrap_or_else(|| panic!("{history:?}")).0;
    assert_eq!(history.last().unwrap().1, "deployed", "{version}: brought back: {history:?}");
    let (out, code) = session(&bed, "safe-rollback", &["bsr", &failed.to_string(), "--chart", "demo/bsr"]);
    assert_eq!(code, 2, "{version}: {out}");
    assert!(
        out.contains(&format!("revision {failed} of bsr is failed: going back to it would deploy what did not work")),
        "{version}: {out}"
    );
    assert!(out.contains("hint: name a revision that was deployed successfully"), "{version}: {out}");
    assert!(out.trim_end().ends_with(&helm_plugin_error("safe-rollback")), "{version}: {out}");
    assert_eq!(bed.history(), history, "{version}: nothing changed");
    // helm keeps the last --history-max revisions: revision 1 is pruned by the next upgrade.
    let ns = bed.ns.as_str();
    bed.helm_with_ok(
        &[],
        &[
            "upgrade",
            "bsr",
            "demo/bsr",
            "--version",
            "1.0.4",
            "--namespace",
            ns,
            "--reuse-values",
            "--history-max",
            "2",
        ],
        None,
    );
    let history = bed.history();
    assert!(history.iter().all(|(r, _, _)| *r > 1), "{version}: revision 1 was pruned: {history:?}");
    let kept: Vec<String> = history.iter().map(|(r, _, _)| r.to_string()).collect();
    let (out, code) = session(&bed, "safe-rollback", &["bsr", "1", "--chart", "demo/bsr"]);
    assert_eq!(code, 2, "{version}: {out}");
    assert!(
        out.contains(&format!("revision 1 of bsr is not in helm's history (it keeps {})", kept.join(", "))),
        "{version}: {out}"
    );
    assert!(out.contains("hint: helm keeps the last --history-max revisions"), "{version}: {out}");
    assert_eq!(bed.history(), history, "{version}: nothing changed");
}
both_helms!(rollback_failed_or_pruned_revision, super::rollback_to_a_failed_or_pruned_revision_is_refused);
