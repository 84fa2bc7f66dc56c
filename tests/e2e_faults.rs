//! The fault suite: what a second operator, a dropped SSH session, a hand-edited ledger,
//! a closed pipe or an API that stops answering does to a run that holds the lock. Real
//! helm 3.19.0 and 4.1.4 on the bed; the API is cut, paused or refused through the bed's
//! fault proxy and the stand-in's deny rules. Each test is named after what it protects.
//! On an external cluster (HSU_E2E_KUBECONFIG) the deny rules' half of one test is
//! skipped, and so are the request faults when the API is served over TLS.

#[path = "e2e/bed.rs"]
mod bed;

use std::process::Stdio;
use std::time::Duration;

use bed::{Bed, VALUES, bed_policy, finish, signal, skip_on_external, skip_on_external_tls, yaml_to_json};
use kube_standin::fault::{Fault, RequestMatch};
use kube_standin::testing::HelmVersion;
use kube_standin::{DenyRule, Verb};
use serde_json::Value;

/// A rolling procedure that holds each hop for `seconds` before deploying: a window in
/// which a test acts on a run that holds the lock.
fn hold_before_deploy(seconds: u32) -> String {
    format!("      - run: {{name: hold, argv: [sleep, \"{seconds}\"]}}\n      - deploy: {{}}\n      - verify: {{}}\n")
}

/// ... and one that holds after the hop is verified, between hops.
fn hold_after_verify(seconds: u32) -> String {
    format!("      - deploy: {{}}\n      - verify: {{}}\n      - run: {{name: hold, argv: [sleep, \"{seconds}\"]}}\n")
}

/// Wait until the hop to `to` is on record and running: the run is in that hop's hold.
fn wait_for_hop(bed: &Bed, to: &str) {
    bed.wait_ledger(&format!("the hop to {to} to start"), |r| {
        r["hops"].as_array().and_then(|h| h.last()).is_some_and(|h| h["outcome"] == "running" && h["to"] == to)
    });
}

fn ledger_text(bed: &Bed) -> String {
    bed.get("v1", "configmaps", "helm-safe-upgrade.bsr").map(|cm| cm.to_string()).unwrap_or_default()
}

fn revision_count(bed: &Bed) -> usize {
    bed.history().len()
}

// ---------------------------------------------------------------------------------------
// Secrets

fn no_operator_value_reaches_the_ledger_or_a_refused_run(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(5));
    let cert = bed.env.dir().join("cert.pem");
    std::fs::write(&cert, "f1le-content").unwrap();
    let set_file = format!("tls.cert={}", cert.display());
    let secrets = ["hunter2", "tail9", "tok3n", "js0n", "l1t", "f1le-content", cert.to_str().unwrap()];
    let policy_arg = policy.to_str().unwrap();
    let mut run = bed.spawn(&[
        "bsr",
        "--to",
        "1.1.9",
        "--chart",
        "demo/bsr",
        "--policy",
        policy_arg,
        "--yes",
        "--set",
        r"postgres.password=hunter2\,tail9",
        "--set-string",
        "token=tok3n",
        "--set-json",
        r#"db={"pw":"js0n"}"#,
        "--set-literal",
        "lit=l1t,x",
        "--set-file",
        &set_file,
    ]);
    let record = bed.wait_ledger("the run to hold the lock", |r| r["lock"].is_object() && r["in_progress"].is_object());
    let command = record["lock"]["command"].as_str().unwrap().to_string();
    assert!(command.contains("--set ***") && command.contains("--set-file ***"), "the command's shape: {command}");
    for secret in secrets {
        assert!(
            !ledger_text(&bed).contains(secret),
            "{}: {secret} is in the ledger: {}",
            bed.version,
            ledger_text(&bed)
        );
    }
    // A second run is refused by the lock and shows its holder's command without values.
    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes", "-o", "json"], 1);
    assert!(stderr.contains("is locked by") && stdout.contains("is locked by"), "{stderr}\n{stdout}");
    for secret in secrets {
        assert!(!stderr.contains(secret) && !stdout.contains(secret), "{secret} leaked:\n{stderr}\n{stdout}");
    }
    // A plan takes no lock, and says who holds it: a run of it now would be refused.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--plan"], 0);
    let holder = record["lock"]["holder"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("bsr is locked by {holder} since"))
            && stdout.contains("a run started now is refused (that run is still alive on this machine"),
        "{}: {stdout}",
        bed.version
    );
    // kill -9 leaves the lock, still without a value.
    run.kill().unwrap();
    run.wait().unwrap();
    for secret in secrets {
        assert!(!ledger_text(&bed).contains(secret), "{secret} is in the ledger after kill -9");
    }
    // --resume deploys exactly those values, from the run's private backup.
    bed.run_expect(&["bsr", "--resume", "--yes"], 0);
    let values = bed.user_values();
    assert_eq!(values["postgres"]["password"], "hunter2,tail9");
    assert_eq!(values["token"], "tok3n");
    assert_eq!(values["db"]["pw"], "js0n");
    assert_eq!(values["lit"], "l1t,x");
    assert_eq!(values["tls"]["cert"], "f1le-content");
    for secret in secrets {
        assert!(!ledger_text(&bed).contains(secret), "{secret} is in the ledger after the resumed run");
    }
    // The release's history tells it: the killed run, then the one that resumed it; no value.
    let (table, _) = bed.run_expect(&["bsr", "--history"], 0);
    let (json, _) = bed.run_expect(&["bsr", "--history", "-o", "json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let outcomes: Vec<&str> = doc["runs"].as_array().unwrap().iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["crashed", "completed"], "{}: {json}", bed.version);
    assert!(table.contains("crashed") && table.contains("completed at 1.1.9"), "{}:\n{table}", bed.version);
    for secret in secrets {
        assert!(!table.contains(secret) && !json.contains(secret), "{secret} is in the history:\n{table}");
    }
}
both_helms!(secrets_stay_out_of_the_ledger, super::no_operator_value_reaches_the_ledger_or_a_refused_run);

fn an_escaped_comma_does_not_end_a_redacted_value(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (stdout, stderr) = bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--policy",
            &bed_policy(),
            "--yes",
            "--debug",
            "-o",
            "json",
            "--timeout",
            &bed.fail_timeout("4s"),
            "--set",
            r"postgres.password=hunter2\,tail9",
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
        ],
        4,
    );
    // stderr is a log here, not a terminal: no value at all, not even an ordinary one,
    // in the debug lines, the failed hop's message, or what the pods said ("bufd:broken").
    assert!(stderr.contains("debug: ") && stderr.contains("'postgres.password=***'"), "{stderr}");
    assert!(stderr.contains("hop 1 failed: ") && stderr.contains("'image.tag=***'"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "recovered");
    assert!(report["error"].as_str().unwrap().contains("'migration.imageTag=***'"), "{stdout}");
    let ledger = ledger_text(&bed);
    for text in [&stdout, &stderr, &ledger] {
        assert!(!text.contains("hunter2") && !text.contains("tail9"), "{}: leaked:\n{text}", bed.version);
        assert!(!text.contains("broken"), "{}: an ordinary value leaked:\n{text}", bed.version);
    }
}
both_helms!(escaped_commas_stay_redacted, super::an_escaped_comma_does_not_end_a_redacted_value);

fn text_from_outside_is_shown_not_obeyed(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // A command's stderr with a screen clear, a title change and a bell.
    let noisy = "      - deploy: {}\n      - verify: {}\n      - run: {name: noisy, argv: [sh, -c, \"printf 'before\\\\033[2J\\\\033]0;pwned\\\\007after' >&2; exit 3\"]}\n";
    let policy = bed.policy_with_rolling_steps(noisy);
    let (stdout, stderr) = bed
        .run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"], 4);
    for text in [&stdout, &stderr] {
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{}: raw control characters:\n{text:?}", bed.version);
    }
    assert!(stdout.contains(r"before\x1b[2J\x1b]0;pwned\x07after"), "shown as escapes: {stdout}");
    // A lock holder edited into the ledger by someone with write access.
    bed.edit_ledger(|r| {
        r["lock"] = serde_json::json!({"holder": "evil\u{1b}[31m@\rhost pid 1", "since": "now\u{1b}]0;x\u{7}", "command": "x\u{9b}y"});
    });
    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "-o", "json"], 1);
    assert!(!stderr.contains('\x1b') && !stderr.contains('\r') && !stderr.contains('\u{9b}'), "{stderr:?}");
    assert!(stderr.contains(r"evil\x1b[31m@\rhost pid 1"), "{stderr}");
    let error: Value = serde_json::from_str(&stdout).unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains(r"\x1b[31m"), "{stdout}");
}
both_helms!(outside_text_is_escaped, super::text_from_outside_is_shown_not_obeyed);

// ---------------------------------------------------------------------------------------
// The lock

fn a_live_run_keeps_its_lock_whatever_the_flags(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(4));
    let run =
        bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    let record = bed.wait_ledger("the run to hold the lock", |r| r["lock"].is_object());
    let holder = record["lock"]["holder"].as_str().unwrap().to_string();
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--force-unlock"], 1);
    assert!(stderr.contains("still alive on this machine"), "{stderr}");
    let named = format!("--force-unlock={holder}");
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", &named], 1);
    assert!(stderr.contains("still alive on this machine"), "{stderr}");
    let (code, _, stderr) = finish(run);
    assert_eq!(code, Some(0), "{}: the holder finished its run: {stderr}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"], "each version deployed once");
    let record = bed.ledger_record().unwrap();
    assert_eq!(record["newest_ever"], "1.2.6");
    assert!(record["lock"].is_null() && record["hops"].as_array().unwrap().iter().all(|h| h["outcome"] == "succeeded"));
}
both_helms!(live_lock_is_kept, super::a_live_run_keeps_its_lock_whatever_the_flags);

fn a_run_that_lost_its_lock_changes_nothing_more(version: HelmVersion) {
    for how in ["taken", "deleted"] {
        let bed = Bed::new(version);
        bed.install("bsr", "1.0.4", VALUES);
        let policy = bed.policy_with_rolling_steps(&hold_before_deploy(3));
        let run =
            bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
        bed.wait_ledger("hop 1 to start", |r| r["hops"].as_array().is_some_and(|h| !h.is_empty()));
        match how {
            // Someone on another machine took the lock over (--force-unlock=HOLDER).
            "taken" => bed.edit_ledger(|r| {
                r["lock"]["holder"] = "ana@elsewhere pid 7".into();
                r["lock"]["process"] = serde_json::json!({"host": "elsewhere", "pid": 7});
            }),
            _ => {
                let out = bed.kubectl(&["delete", "configmap", "helm-safe-upgrade.bsr", "-n", &bed.ns], None);
                assert!(out.status.success());
            }
        }
        let (code, stdout, stderr) = finish(run);
        assert_eq!(code, Some(1), "{} ({how}): {stdout}\n{stderr}", bed.version);
        assert!(stdout.contains("lost the lock"), "{how}: {stdout}");
        assert!(stdout.contains("bsr is at 1.0.4"), "where the release stands: {stdout}");
        assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "{how}: nothing deployed after the lock was lost");
        if how == "taken" {
            assert_eq!(
                bed.ledger_record().unwrap()["lock"]["holder"],
                "ana@elsewhere pid 7",
                "the new holder keeps it"
            );
        }
    }
}
both_helms!(lost_lock_stops_before_the_next_change, super::a_run_that_lost_its_lock_changes_nothing_more);

fn the_cluster_lock_is_never_bypassed_for_a_local_file(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let args = ["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes"];
    // Requests are forbidden by the stand-in's deny rules. (A cluster would need a
    // ServiceAccount whose RBAC lacks exactly these verbs, which the bed does not build.)
    // An API the tool cannot reach at all is the same error (tests/ledger.rs, and
    // e2e_outages for an API that fails mid-run).
    if skip_on_external("forbidding `get` and `create` of ConfigMaps needs the stand-in's deny rules") {
        return;
    }
    let standin = bed.standin().expect("the bed's own stand-in");
    // Reading the ledger's ConfigMap forbidden: the shared lock cannot be checked.
    let denied =
        standin.deny(DenyRule::new(&[Verb::Get], "configmaps").in_namespace(&bed.ns).named("helm-safe-upgrade.bsr"));
    let (_, stderr) = bed.run_expect(&args, 1);
    assert!(stderr.contains("forbids this user to read ConfigMap helm-safe-upgrade.bsr"), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "nothing deployed without a checked lock");
    // ... unless the operator chooses a local ledger.
    let mut local = args.to_vec();
    local.push("--local-ledger");
    let (_, stderr) = bed.run_expect(&local, 0);
    assert!(stderr.contains("--local-ledger: the ledger of bsr is kept in"), "{stderr}");
    standin.allow(denied);
    assert!(bed.ledger_record().is_none(), "no ConfigMap was written");
    // Creating ConfigMaps forbidden and none exists: the store cannot exist, the file is used.
    standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace(&bed.ns));
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"], 0);
    assert!(stderr.contains(&format!("may not create ConfigMaps in namespace {}", bed.ns)), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
}
both_helms!(no_silent_local_ledger, super::the_cluster_lock_is_never_bypassed_for_a_local_file);

fn a_hop_starts_only_after_its_start_is_recorded(version: HelmVersion) {
    if skip_on_external_tls("failing only the ledger's writes needs the fault proxy to read plain HTTP") {
        return;
    }
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    let ledger_write = || RequestMatch::new("PUT", "/configmaps/helm-safe-upgrade.bsr");
    let policy = bed.policy_with_rolling_steps(&hold_after_verify(2));
    let run =
        bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    // From the hold at the end of hop 1 on, every ledger write fails.
    bed.wait_ledger("hop 1's hold", |r| r["in_progress"]["step"] == 2);
    bed.proxy().on_request(ledger_write(), Fault::Status(503), 1000);
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(1), "{}: {stdout}\n{stderr}", bed.version);
    assert!(stdout.contains("could not record the next step before hop 2"), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "hop 2 did not start unrecorded");
    // When the API takes writes again, --resume finishes the plan.
    bed.proxy().clear_request_faults();
    bed.run_expect(&["bsr", "--resume", "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(hop_start_is_recorded_first, super::a_hop_starts_only_after_its_start_is_recorded);

fn a_ledger_write_whose_answer_was_lost_is_not_mistaken_for_a_lost_lock(version: HelmVersion) {
    if skip_on_external_tls("losing only the answers to ledger writes needs the fault proxy to read plain HTTP") {
        return;
    }
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    // Every third ledger write is applied, but its answer never arrives.
    let run = bed.spawn(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"]);
    bed.wait_history("hop 1 to deploy", |h| h.len() >= 2);
    bed.proxy().on_request(RequestMatch::new("PUT", "/configmaps/helm-safe-upgrade.bsr"), Fault::ResetResponse, 2);
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(0), "{}: {stdout}\n{stderr}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
    assert!(bed.ledger_record().unwrap()["lock"].is_null());
}
both_helms!(
    ambiguous_writes_are_read_back,
    super::a_ledger_write_whose_answer_was_lost_is_not_mistaken_for_a_lost_lock
);

fn concurrent_runs_under_api_delays_deploy_each_version_once(version: HelmVersion) {
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    bed.proxy().delay(Duration::from_millis(40));
    let args = ["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"];
    let (a, b) = (bed.spawn(&args), bed.spawn(&args));
    let (a, b) = (finish(a), finish(b));
    bed.proxy().delay(Duration::ZERO);
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(1)], "{}: one wins, one is refused:\n{a:?}\n{b:?}", bed.version);
    let loser = if a.0 == Some(1) { &a } else { &b };
    assert!(loser.2.contains("is locked by"), "{loser:?}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
}
both_helms!(concurrent_runs, super::concurrent_runs_under_api_delays_deploy_each_version_once);

// ---------------------------------------------------------------------------------------
// --resume and re-runs

fn resume_uses_the_policy_the_run_started_with(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(2));
    let mut run =
        bed.spawn(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    wait_for_hop(&bed, "1.2.6");
    run.kill().unwrap();
    run.wait().unwrap();
    // The file changes after the run started; --resume keeps the recorded text.
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace("name: bsr-bed", "name: bsr-edited")).unwrap();
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--policy", "bsr", "--yes"], 2);
    assert!(stderr.contains("--resume continues with the policy the interrupted run used"), "{stderr}");
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes"], 0);
    assert!(stderr.contains("policy bsr-bed,") && stderr.contains("the ledger's copy of"), "{stderr}");
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.3.0");
    // A fresh run without --policy keeps the file policy the operator chose, not the preset.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.3.2", "--yes"], 0);
    assert!(stderr.contains("policy bsr-bed,") && stderr.contains("has changed since the last run"), "{stderr}");
    // A different --policy is a change the plan shows (and the start confirmation asks).
    let (plan, _) = bed.run_expect(&["bsr", "--to", "1.4.1", "--policy", "bsr", "--plan"], 0);
    assert!(
        plan.contains("the policy changes: the last run used file") && plan.contains("policy-with-steps.yaml"),
        "{plan}"
    );
    assert!(plan.contains("this one uses preset bsr"), "{plan}");
}
both_helms!(resume_keeps_the_policy, super::resume_uses_the_policy_the_run_started_with);

fn resume_deploys_the_operators_overrides(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let extra = bed.env.dir().join("extra.yaml");
    std::fs::write(&extra, "config:\n  features:\n    webhooks: false\n").unwrap();
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(2));
    let policy = policy.to_str().unwrap();
    let args = ["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--policy", policy, "--yes"];
    let mut with_overrides = args.to_vec();
    with_overrides.extend(["--set", "replicaCount=5", "-f", extra.to_str().unwrap()]);
    let mut run = bed.spawn(&with_overrides);
    wait_for_hop(&bed, "1.2.6");
    run.kill().unwrap();
    run.wait().unwrap();
    // The file given with -f changes meanwhile: the resumed run deploys the copy.
    std::fs::write(&extra, "config:\n  features:\n    webhooks: true\n").unwrap();
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes", "--set", "replicaCount=1"], 2);
    assert!(stderr.contains("-f/--set cannot be given again"), "{stderr}");
    bed.run_expect(&["bsr", "--resume", "--yes"], 0);
    let values = bed.user_values();
    assert_eq!(values["replicaCount"], 5, "{values}");
    assert_eq!(values["config"]["features"]["webhooks"], false, "{values}");
    assert_eq!(values["postgres"]["password"], "s3cret-value", "{values}");
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.3.0");

    // Without the backup on this machine, --resume refuses and says what to do.
    let mut run = bed.spawn(&[
        "bsr",
        "--to",
        "1.4.1",
        "--chart",
        "demo/bsr",
        "--policy",
        policy,
        "--yes",
        "--set",
        "replicaCount=4",
    ]);
    wait_for_hop(&bed, "1.4.1");
    run.kill().unwrap();
    run.wait().unwrap();
    std::fs::remove_dir_all(bed.state.path().join("helm-safe-upgrade/backups")).unwrap();
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes"], 2);
    assert!(stderr.contains("are not in") && stderr.contains("restore that backup folder"), "{stderr}");
    assert_eq!(bed.charts_deployed().len(), 4, "nothing deployed without the run's values");
}
both_helms!(resume_keeps_overrides, super::resume_deploys_the_operators_overrides);

fn values_a_procedure_set_for_one_deploy_are_never_carried(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // Hold the fast path right after its maintenance deploy.
    let text = std::fs::read_to_string(bed_policy()).unwrap();
    let old = "      - deploy: { version: from, set: { maintenance: true } }\n      - verify: {}\n";
    assert!(text.contains(old));
    let held = format!("{old}      - run: {{name: hold, argv: [sleep, \"30\"]}}\n");
    let policy = bed.env.dir().join("fast-hold.yaml");
    std::fs::write(&policy, text.replace(old, &held)).unwrap();
    let mut run = bed.spawn(&[
        "bsr",
        "--to",
        "1.3.2",
        "--chart",
        "demo/bsr",
        "--policy",
        policy.to_str().unwrap(),
        "--fast-path",
        "--yes",
        "--snapshot-taken",
    ]);
    bed.wait_history("the maintenance deploy", |h| h.len() >= 2 && h[1].1 == "deployed");
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(bed.user_values()["maintenance"], true, "the release is in maintenance mode");
    std::fs::remove_dir_all(bed.state.path().join("helm-safe-upgrade/backups")).unwrap();
    // --resume without the values the run started with: refused.
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes", "--snapshot-taken"], 2);
    assert!(stderr.contains("are not in"), "{stderr}");
    // A new run (after taking the dead run's lock) would carry maintenance: refused.
    let (_, stderr) =
        bed.run_expect(&["bsr", "--to", "1.3.2", "--yes", "--force-unlock", "--fast-path", "--snapshot-taken"], 2);
    assert!(stderr.contains("the release's values hold maintenance"), "{stderr}");
    assert_eq!(revision_count(&bed), 2, "nothing deployed");
    assert_eq!(bed.user_values()["maintenance"], true);
}
both_helms!(procedure_values_not_carried, super::values_a_procedure_set_for_one_deploy_are_never_carried);

/// A procedure's deploy of a hop's start (the fast path's maintenance mode at `from`) is
/// rendered before the first change like the hop's own: values the old chart cannot
/// render (here `image` set to a string where the chart reads `image.repository`) refuse
/// the whole plan, naming the hop and the version that deploy would run, and nothing is
/// changed — not even the maintenance deploy that would come first.
fn a_maintenance_deploy_that_does_not_render_refuses_the_plan(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let text = std::fs::read_to_string(bed_policy()).unwrap();
    let old = "      - deploy: { version: from, set: { maintenance: true } }\n";
    assert!(text.contains(old));
    let policy = bed.env.dir().join("fast-unrenderable.yaml");
    std::fs::write(
        &policy,
        text.replace(old, "      - deploy: { version: from, set: { maintenance: true, image: none } }\n"),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let args = ["bsr", "--to", "1.3.2", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--fast-path"];
        bed.run_expect(&[&args[..], extra].concat(), 3)
    };
    let (_, stderr) = run(&["--yes", "--snapshot-taken"]);
    assert!(
        stderr.contains("hop 1 (1.0.4 → 1.3.2): bsr 1.0.4 does not render with the values the procedure's step 1 would deploy (its `set:` gives `image`, `maintenance`)"),
        "{version}: {stderr}"
    );
    assert!(
        stderr.contains("nothing was changed") && stderr.contains("repository"),
        "{version}: helm's words: {stderr}"
    );
    assert_eq!(revision_count(&bed), 1, "{version}: nothing deployed");
    assert_eq!(bed.user_values()["maintenance"], serde_json::Value::Null, "{version}: never in maintenance mode");
    assert!(bed.ledger_record().is_none_or(|r| r["lock"].is_null()), "{version}: no lock left");
    // `--plan` says the same before anyone is asked anything.
    let (_, stderr) = run(&["--plan"]);
    assert!(stderr.contains("bsr 1.0.4 does not render"), "{version}: {stderr}");
}
both_helms!(maintenance_deploy_render_refused, super::a_maintenance_deploy_that_does_not_render_refuses_the_plan);

fn an_upgrade_made_outside_the_run_stops_it_before_the_next_hop(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed.policy_with_rolling_steps(&hold_after_verify(6));
    let run =
        bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    bed.wait_ledger("hop 1's hold", |r| r["in_progress"]["step"] == 2);
    let values = bed.values_file(VALUES);
    bed.env.helm_ok(&[
        "upgrade",
        "bsr",
        "demo/bsr",
        "--version",
        "1.3.2",
        "--namespace",
        &bed.ns,
        "-f",
        values.to_str().unwrap(),
        "--wait",
        "--timeout",
        "60s",
    ]);
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(1), "{}: {stdout}\n{stderr}", bed.version);
    assert!(stdout.contains("changed outside this run before hop 2"), "{stdout}");
    assert!(stdout.contains("it is now at revision 3 (1.3.2, deployed)"), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.3.2"], "1.2.6 was not deployed over 1.3.2");
}
both_helms!(out_of_band_upgrade_stops_the_run, super::an_upgrade_made_outside_the_run_stops_it_before_the_next_hop);

fn only_versions_helm_ran_count_as_deployed(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // A value that makes the chart fail to render: the preflight refuses the plan...
    let bad = ["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes", "--set-json", r#"extraEnv="oops""#];
    let (_, stderr) = bed.run_expect(&bad, 3);
    assert!(stderr.contains("rule:      render") && stderr.contains("bsr 1.1.9 does not render"), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"]);
    // ... and without it, helm stops before it makes a revision.
    let (stdout, stderr) = bed.run_expect(&[&bad[..], &["--no-preflight"]].concat(), 4);
    assert!(
        stderr.contains("hop 1 failed: upgrade bsr to 1.1.9 failed (exit 1); bringing bsr back to 1.0.4"),
        "{stderr}"
    );
    // helm's error is said once, in the outcome, not also as the hop fails.
    let said = format!("{stdout}{stderr}").matches("UPGRADE FAILED").count();
    assert_eq!(said, 1, "{stdout}\n{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"]);
    assert_eq!(bed.ledger_record().unwrap()["newest_ever"], "1.0.4", "1.1.9 never ran");
    // A bad flag is bad input, found before anything changes.
    let (_, stderr) =
        bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes", "--timeout", "bogus"], 2);
    assert!(stderr.contains("--timeout \"bogus\" is not a duration"), "{stderr}");
    assert_eq!(bed.ledger_record().unwrap()["runs"].as_array().unwrap().len(), 1, "no run was recorded");
    // A version helm did run, and that failed after its hook, counts.
    let policy = bed_policy();
    let (_, _) = bed.run_expect(
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
            &bed.fail_timeout("4s"),
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
        ],
        4,
    );
    assert_eq!(bed.ledger_record().unwrap()["newest_ever"], "1.1.9", "1.1.9 ran (and failed)");
}
both_helms!(newest_ever_is_what_helm_ran, super::only_versions_helm_ran_count_as_deployed);

fn the_ledger_is_shown_and_checked_not_trusted(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes"], 0);
    // A chart source edited into the ledger is shown as coming from there.
    bed.edit_ledger(|r| r["chart"] = bed.charts.path().to_str().unwrap().into());
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.2.6", "--plan"], 0);
    assert!(stdout.contains(&format!("chart:  {} (from the ledger)", bed.charts.path().display())), "{stdout}");
    // A values folder the ledger names outside the tool's own backups is refused.
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(30));
    let mut run =
        bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    bed.wait_ledger("the run's values on record", |r| r["in_progress"]["values"].is_object());
    run.kill().unwrap();
    run.wait().unwrap();
    // Files that no longer match their recorded digests are refused.
    bed.edit_ledger(|r| r["in_progress"]["values"]["files"][0]["digest"] = "sha256:00".into());
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes"], 2);
    assert!(stderr.contains("is not what the interrupted run recorded"), "{stderr}");
    // A folder outside the tool's own backups is never read.
    bed.edit_ledger(|r| r["in_progress"]["values"]["backup"] = "../../../etc".into());
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes"], 2);
    assert!(stderr.contains("not a plain folder name"), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "nothing deployed from the edited record");
}
both_helms!(ledger_is_untrusted, super::the_ledger_is_shown_and_checked_not_trusted);

fn a_command_forged_into_the_ledgers_policy_never_runs(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(0));
    let policy = policy.to_str().unwrap();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", policy, "--yes"], 0);
    // Whoever may edit ConfigMaps in the namespace rewrites the ledger's copy of the
    // operator's policy, with a digest to match: the next run without --policy would take
    // that copy, and its commands run on the operator's machine.
    let marker = bed.env.dir().join("forged-command-ran");
    bed.edit_ledger(|r| {
        let text = r["policy_record"]["text"].as_str().unwrap();
        let forged = text.replace("[sleep, \"0\"]", &format!("[touch, \"{}\"]", marker.display()));
        assert_ne!(forged, text);
        r["policy_record"]["digest"] = helm_safe_upgrade::digest::sha256(forged.as_bytes()).into();
        r["policy_record"]["text"] = forged.into();
    });
    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "-o", "json"], 3);
    let refused: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refused["refused"]["rule"], "ledger-commands", "{stdout}\n{stderr}");
    let message = refused["refused"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("run step \"hold\" (procedure rolling): touch {}", marker.display())),
        "{message}"
    );
    assert!(!marker.exists(), "the forged command ran");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "a refusal changes nothing");
    // The operator's own file decides again.
    bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy, "--yes"], 0);
    assert!(!marker.exists());
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
}
both_helms!(forged_ledger_commands_never_run, super::a_command_forged_into_the_ledgers_policy_never_runs);

fn a_pending_release_follows_the_advice_it_is_given(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed_policy();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    // A bare helm upgrade whose helm dies mid-wait (an API outage, a killed CI job).
    let values = bed.values_file(VALUES);
    let mut helm = bed
        .env
        .command(bed.env.helm_bin())
        .args([
            "upgrade",
            "bsr",
            "demo/bsr",
            "--version",
            "1.2.6",
            "--namespace",
            &bed.ns,
            "-f",
            values.to_str().unwrap(),
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.2.6",
            "--wait",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    bed.wait_history("helm to start the upgrade", |h| h.len() >= 3 && h[2].1 == "pending-upgrade");
    std::thread::sleep(Duration::from_millis(500));
    helm.kill().unwrap();
    helm.wait().unwrap();
    assert_eq!(bed.history()[2].1, "pending-upgrade");
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--yes"], 2);
    assert!(stderr.contains(&format!("`helm safe-rollback bsr --namespace {}`", bed.ns)), "{stderr}");
    assert!(stderr.contains("1.2.6 may have run its migrations"), "{stderr}");
    // Following the advice works, the policy's way: helm rollback clears the pending
    // revision, then 1.2.6's down-migration runs.
    let mut rollback = bed.tool();
    rollback.env("HELM_PLUGIN_NAME", "safe-rollback").args(["bsr", "--yes", "--accept-data-loss"]);
    let out = rollback.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{}: {stdout}\n{stderr}", bed.version);
    assert!(stderr.contains("helm rollback bsr 2") && stderr.contains("permanent data loss"), "{stderr}");
    let history = bed.history();
    assert_eq!(history.last().unwrap().1, "deployed");
    assert_eq!(history.last().unwrap().2, "bsr-1.1.9");
    assert!(bed.get("v1", "configmaps", "bsr-migratedownto-222").is_some(), "1.2.6's down-migration ran");
}
both_helms!(pending_release_advice_works, super::a_pending_release_follows_the_advice_it_is_given);

// ---------------------------------------------------------------------------------------
// Closed output and hang-ups

fn a_closed_stderr_stops_the_run_and_gives_the_lock_back(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut child = bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "-o", "json"]);
    drop(child.stderr.take()); // `2>&1 | head -0`
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{}: {stdout}", bed.version);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "stopped");
    assert!(report["reason"].as_str().unwrap().contains("the output was closed"), "{report}");
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "the lock was released: {record}");
    assert!(record["hops"].as_array().unwrap().iter().all(|h| h["outcome"] != "running"), "{record}");
    assert_eq!(bed.history().last().unwrap().1, "deployed");
    // stdout closed under -o json: the run still ends with its own exit code.
    let mut child = bed.spawn(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes", "-o", "json"]);
    drop(child.stdout.take());
    let (code, _, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(bed.ledger_record().unwrap()["lock"].is_null());
}
both_helms!(closed_stderr_stops_safely, super::a_closed_stderr_stops_the_run_and_gives_the_lock_back);

fn a_hang_up_stops_at_the_next_safe_point_and_gives_the_lock_back(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed.policy_with_rolling_steps(&hold_before_deploy(2));
    let run = bed.spawn(&[
        "bsr",
        "--to",
        "1.3.0",
        "--chart",
        "demo/bsr",
        "--policy",
        policy.to_str().unwrap(),
        "--yes",
        "-o",
        "json",
    ]);
    wait_for_hop(&bed, "1.1.9");
    signal(&run, libc::SIGHUP);
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(5), "{}: {stdout}\n{stderr}", bed.version);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["at"], "1.1.9", "the hop under way was finished: {report}");
    assert!(report["reason"].as_str().unwrap().contains("hung up"), "{report}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "{record}");
    let last_run = record["runs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last_run["outcome"], "stopped");
    assert!(last_run["message"].as_str().unwrap().contains("hung up"), "{last_run}");
}
both_helms!(sighup_stops_safely, super::a_hang_up_stops_at_the_next_safe_point_and_gives_the_lock_back);
