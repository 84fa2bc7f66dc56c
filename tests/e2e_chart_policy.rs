//! Policies shipped in the chart, on the e2e bed (real helm 3.19.0 and 4.1.4, the bed's
//! repository `demo`): the vendorapp fixture chart names its policy file with the
//! `Chart.yaml` annotation `helm-safe-upgrade/policy` from 1.2.0 on (crates/chart-standin,
//! "vendorapp"): up to three minors per hop, and a required stop at 1.2.0 that no preset
//! has; 1.5.0's adds a `run` step, 1.6.0's has a typo. Without `--policy`, the run reads
//! the policy of its target chart and walks by it; its commands need
//! `--allow-chart-commands`; `--policy` wins over it; a policy that does not load is an
//! error naming the chart version and the line. Every refusal changes nothing.

#[path = "e2e/bed.rs"]
mod bed;

use bed::Bed;
use kube_standin::testing::HelmVersion;
use serde_json::Value;

/// `helm install vendorapp demo/vendorapp --version 1.0.0`.
fn install_vendorapp_100(bed: &Bed) {
    let ns = bed.ns.as_str();
    let install = ["install", "vendorapp", "demo/vendorapp", "--version", "1.0.0", "--namespace", ns];
    bed.helm_with_ok(&[], &[&install[..], &["--create-namespace", "--wait", "--timeout", "60s"]].concat(), None);
}

/// The chart of every revision, oldest first (`vendorapp-1.0.0`, …).
fn charts_deployed(bed: &Bed) -> Vec<String> {
    let out = bed.helm_with_ok(&[], &["history", "vendorapp", "--namespace", &bed.ns, "-o", "json"], None);
    let revisions: Value = serde_json::from_str(&out).unwrap();
    revisions.as_array().unwrap().iter().map(|r| r["chart"].as_str().unwrap().to_string()).collect()
}

fn ledger(bed: &Bed) -> Option<Value> {
    let cm = bed.get("v1", "configmaps", "helm-safe-upgrade.vendorapp")?;
    Some(serde_json::from_str(cm["data"]["ledger"].as_str().expect("data.ledger")).expect("JSON"))
}

/// The hops' targets of a JSON plan.
fn targets(plan: &Value) -> Vec<String> {
    plan["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap().to_string()).collect()
}

/// A refused run changed nothing: the same revisions, and no lock left in the ledger.
fn unchanged(bed: &Bed, before: &[String], out: &str) {
    assert_eq!(charts_deployed(bed), before, "{}: {out}", bed.version);
    assert!(ledger(bed).is_none_or(|l| l["lock"].is_null()), "{}: a lock was left: {out}", bed.version);
}

fn a_charts_own_policy_decides_when_the_operator_names_none(version: HelmVersion) {
    let bed = Bed::new(version);
    install_vendorapp_100(&bed);
    let upgrade = |to: &'static str| ["vendorapp", "--to", to, "--chart", "demo/vendorapp"];

    // --policy wins over the chart's: the generic preset walks one minor at a time.
    let mine = [&upgrade("1.4.0")[..], &["--policy", "sequential-minor", "--plan", "-o", "json"]].concat();
    let (stdout, _) = bed.run_expect(&mine, 0);
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(plan["sources"]["policy"], "preset sequential-minor", "{version}: {stdout}");
    assert_eq!(targets(&plan), ["1.1.0", "1.2.0", "1.3.0", "1.4.0"], "{version}");

    // Without it, 1.4.0's own policy: three minors per hop, but a stop at 1.2.0 first.
    let (table, _) = bed.run_expect(&[&upgrade("1.4.0")[..], &["--plan"]].concat(), 0);
    assert!(table.contains("upgrade vendorapp 1.0.0 → 1.4.0  (policy vendorapp,"), "{version}: {table}");
    assert!(table.contains("  policy: chart vendorapp 1.4.0 (upgrade-policy.yaml) (sha256:"), "{version}: {table}");
    assert!(!table.contains("commands from the chart"), "{version}: it has none: {table}");
    // The target is pulled once: read for its policy, then rendered by the preflight from
    // the same file (one pull per hop); without a preflight, the one pull is the policy's.
    // That is with nothing kept from the runs above (`forget`).
    let kept = bed.env.dir().join("xdg-cache/helm-safe-upgrade/charts");
    let pulls = |extra: &[&str], forget: bool| {
        if forget {
            std::fs::remove_dir_all(&kept).unwrap();
        }
        let (_, stderr) = bed.run_expect(&[&upgrade("1.4.0")[..], &["--plan", "--debug"], extra].concat(), 0);
        stderr.lines().filter(|l| l.contains("debug: ") && l.contains(" pull ")).count()
    };
    assert_eq!(pulls(&[], true), 2, "{version}: hops to 1.2.0 and 1.4.0");
    assert_eq!(pulls(&["--no-preflight"], true), 1, "{version}");
    // The archives are kept between runs, by the digest helm's refreshed index gives: the
    // next plan of the path pulls nothing, and neither does the run that walks it.
    assert_eq!(pulls(&[], false), 1, "{version}: 1.2.0 was not kept yet");
    assert_eq!(pulls(&[], false), 0, "{version}");
    let kept_files = std::fs::read_dir(&kept).unwrap().count();
    assert_eq!(kept_files, 2, "{version}: one file per archive");
    // A directory of packaged charts: the policy is read from the archive where it lies.
    let dir = bed.charts.path().to_str().unwrap();
    let in_dir = ["vendorapp", "--to", "1.4.0", "--chart", dir, "--plan", "--debug", "-o", "json"];
    let (stdout, stderr) = bed.run_expect(&in_dir, 0);
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(plan["sources"]["policy"], "chart vendorapp 1.4.0 (upgrade-policy.yaml)", "{version}: {stdout}");
    assert_eq!(targets(&plan), ["1.2.0", "1.4.0"], "{version}");
    assert!(!stderr.contains(" pull "), "{version}: nothing to pull: {stderr}");
    let (stdout, stderr) = bed.run_expect(&[&upgrade("1.4.0")[..], &["--yes"]].concat(), 0);
    assert!(format!("{stdout}{stderr}").contains("vendorapp is at 1.4.0: done"), "{version}: {stdout}{stderr}");
    let walked = ["vendorapp-1.0.0", "vendorapp-1.2.0", "vendorapp-1.4.0"].map(String::from);
    assert_eq!(charts_deployed(&bed), walked, "{version}");
    let record = ledger(&bed).expect("a ledger");
    assert_eq!(
        record["policy_record"]["origin"],
        serde_json::json!({"kind": "chart", "chart": "vendorapp", "version": "1.4.0", "file": "upgrade-policy.yaml"}),
        "{version}: {record}"
    );

    // 1.6.0's policy does not load: an error naming the chart version and the line, and
    // no preset in its place.
    let (_, stderr) = bed.run_expect(&[&upgrade("1.6.0")[..], &["--yes"]].concat(), 2);
    assert!(
        stderr
            .contains("invalid policy chart vendorapp 1.6.0, upgrade-policy.yaml:7:3: unknown field `max_minor_stpe`"),
        "{version}: {stderr}"
    );
    unchanged(&bed, &walked, &stderr);

    // 1.5.0's policy runs a command before each deploy: refused until the operator allows
    // it, listing the command.
    let (stdout, stderr) = bed.run_expect(&[&upgrade("1.5.0")[..], &["--yes", "-o", "json"]].concat(), 3);
    let refused: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(refused["refused"]["rule"], "chart-commands", "{version}: {stdout}");
    let message = refused["refused"]["message"].as_str().unwrap();
    assert!(message.contains("from chart vendorapp 1.5.0 (upgrade-policy.yaml) would run 1 command"), "{message}");
    assert!(
        message.contains(
            "run step \"prepare the database\" (procedure prepared): echo 'vendorapp: database of {release} prepared for {to}'"
        ),
        "{version}: {message}"
    );
    assert!(refused["refused"]["supported"].as_str().unwrap().contains("--allow-chart-commands"), "{version}");
    unchanged(&bed, &walked, &format!("{stdout}{stderr}"));

    let allowed = [&upgrade("1.5.0")[..], &["--yes", "--allow-chart-commands"]].concat();
    let (stdout, stderr) = bed.run_expect(&allowed, 0);
    let out = format!("{stdout}{stderr}");
    assert!(out.contains("commands from the chart (allowed by --allow-chart-commands"), "{version}: {out}");
    // The vendor changed its policy since the last run's: said before the start.
    assert!(out.contains("the policy changes: the last run used chart vendorapp 1.4.0 (upgrade-policy.yaml)"), "{out}");
    assert!(out.contains("vendorapp: database of vendorapp prepared for 1.5.0"), "{version}: {out}");
    assert_eq!(charts_deployed(&bed).last().map(String::as_str), Some("vendorapp-1.5.0"), "{version}");

    // A rollback reads the policy of the chart deployed now: 1.5.0's, with its command.
    let mut rollback = bed.tool();
    rollback.env("HELM_PLUGIN_NAME", "safe-rollback").args(["vendorapp", "--chart", "demo/vendorapp", "--plan"]);
    let out = rollback.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{version}: {stderr}");
    assert!(stderr.contains("from chart vendorapp 1.5.0 (upgrade-policy.yaml) would run 1 command"), "{stderr}");
}
both_helms!(chart_shipped_policy, super::a_charts_own_policy_decides_when_the_operator_names_none);
