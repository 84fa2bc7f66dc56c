//! The Kubernetes API going away under a run, on the bed behind the fault proxy (helm
//! 3.19.0 and 4.1.4): paused mid-hop, failing between hops, and losing the write that
//! would have marked a release deployed. Whatever happens, the run ends with a documented
//! exit code, no lock or `running` hop is left behind by a run that ended, and what it
//! says to do next works.

#[path = "e2e/bed.rs"]
mod bed;

use std::time::Duration;

use bed::{Bed, VALUES, bed_policy, finish, skip_on_external_tls, yaml_to_json};
use kube_standin::fault::{Fault, RequestMatch};
use kube_standin::testing::HelmVersion;

fn no_pending(history: &[(u64, String, String)]) -> bool {
    history.iter().all(|(_, s, _)| !s.starts_with("pending"))
}

fn an_api_pause_mid_hop_lets_the_hop_finish(version: HelmVersion) {
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    let run = bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--timeout", "60s"]);
    bed.wait_history("hop 1 to start", |h| h.len() >= 2);
    bed.proxy().pause();
    std::thread::sleep(Duration::from_secs(8));
    bed.proxy().pass();
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(0), "{}: {stdout}\n{stderr}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
    assert!(no_pending(&bed.history()));
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null() && record["in_progress"].is_null(), "{record}");
}
both_helms!(pause_mid_hop, super::an_api_pause_mid_hop_lets_the_hop_finish);

fn an_api_failing_between_hops_stops_the_run_and_resume_continues(version: HelmVersion) {
    if skip_on_external_tls("failing only helm's reads of Secrets needs the fault proxy to read plain HTTP") {
        return;
    }
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    let hold = "      - deploy: {}\n      - verify: {}\n      - run: {name: hold, argv: [sleep, \"3\"]}\n";
    let policy = bed.policy_with_rolling_steps(hold);
    let run =
        bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    bed.wait_ledger("hop 1 to be held after its verify", |r| r["in_progress"]["step"] == 2);
    // helm reads releases from Secrets: from now on it cannot.
    bed.proxy().on_request(RequestMatch::new("GET", "/secrets"), Fault::Status(503), 10_000);
    let (code, stdout, stderr) = finish(run);
    bed.proxy().clear_request_faults();
    assert_eq!(code, Some(1), "{}: {stdout}\n{stderr}", bed.version);
    assert!(stdout.contains("cannot read bsr before hop 2"), "{stdout}");
    assert!(stdout.contains("nothing of hop 2 was started"), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "the run ended and gave the lock back: {record}");
    assert!(record["in_progress"].is_object(), "the plan stays on record for --resume: {record}");
    // When the API answers again, --resume finishes the plan with the run's own values.
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--yes"], 0);
    assert!(stderr.contains("resuming the upgrade to 1.2.6"), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(failing_between_hops, super::an_api_failing_between_hops_stops_the_run_and_resume_continues);

fn a_release_left_pending_by_a_lost_write_is_brought_back_the_policys_way(version: HelmVersion) {
    if skip_on_external_tls("losing only helm's writes of one Secret needs the fault proxy to read plain HTTP") {
        return;
    }
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    // helm's writes of revision 2 after creating it (the hooks' outcome, then the status
    // deployed) are lost: helm only warns, and the release stays pending-upgrade.
    bed.proxy().on_request(RequestMatch::new("PUT", "/secrets/sh.helm.release.v1.bsr.v2"), Fault::Status(503), 2);
    let policy = bed_policy();
    let (stdout, stderr) =
        bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 4);
    assert!(stdout.contains("was brought back to 1.0.4"), "{stdout}\n{stderr}");
    // `helm rollback` to revision 1 made revision 3; helm leaves revision 2 marked
    // pending-upgrade in the history (it supersedes only deployed revisions), but the
    // release is no longer pending: its latest revision is deployed.
    let history = bed.history();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history.last().unwrap().2, "bsr-1.0.4");
    assert_eq!(history.last().unwrap().1, "deployed");
    assert!(
        bed.get("v1", "configmaps", "bsr-migratedownto-210").is_some(),
        "1.1.9's migrations may have run: its down-migration ran"
    );
    let record = bed.ledger_record().unwrap();
    assert_eq!(record["newest_ever"], "1.1.9", "helm ran 1.1.9: {record}");
    assert!(record["lock"].is_null(), "{record}");
    // Nothing is stuck: the upgrade goes through when the API keeps its writes.
    bed.run_expect(&["bsr", "--to", "1.1.9", "--yes"], 0);
    assert_eq!(bed.history().last().unwrap().2, "bsr-1.1.9");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(pending_after_a_lost_write, super::a_release_left_pending_by_a_lost_write_is_brought_back_the_policys_way);

fn a_dead_runs_lock_is_taken_over_with_force_unlock(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let hold = "      - run: {name: hold, argv: [sleep, \"30\"]}\n      - deploy: {}\n      - verify: {}\n";
    let policy = bed.policy_with_rolling_steps(hold);
    let mut run =
        bed.spawn(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"]);
    bed.wait_ledger("the run to hold the lock", |r| r["in_progress"].is_object());
    run.kill().unwrap(); // SIGKILL: no cleanup, the lock stays.
    run.wait().unwrap();
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--policy", &bed_policy(), "--yes"], 1);
    assert!(stderr.contains("that run is gone") && stderr.contains("--force-unlock"), "{stderr}");
    bed.run_expect(&["bsr", "--to", "1.1.9", "--policy", &bed_policy(), "--yes", "--force-unlock"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    assert!(bed.ledger_record().unwrap()["lock"].is_null());
}
both_helms!(dead_lock_taken_over, super::a_dead_runs_lock_is_taken_over_with_force_unlock);

fn a_release_the_api_client_cannot_read_is_read_through_helm(version: HelmVersion) {
    if skip_on_external_tls("failing only the tool's read of helm's storage needs the fault proxy to read plain HTTP") {
        return;
    }
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    // The tool's first read of the release's storage objects fails (its labels in its
    // order; helm asks for `name=bsr,owner=helm`, which passes): the run reads the release
    // through helm instead, and walks as before. (A failure of the API client's later
    // reads stops a run before its next hop, as `failing_between_hops` shows: helm's own
    // read of its storage needs the same API.)
    bed.proxy().on_request(RequestMatch::new("GET", "labelSelector=owner%3Dhelm%2Cname%3Dbsr"), Fault::Status(500), 1);
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--debug"], 0);
    let helm_runs: Vec<&str> = stderr.lines().filter(|l| l.contains("debug: ")).collect();
    for read in [" get metadata ", " status ", " history "] {
        assert!(helm_runs.iter().any(|l| l.contains(read)), "{}: no helm{read}read:\n{stderr}", bed.version);
    }
    bed.proxy().clear_request_faults();
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
    assert!(no_pending(&bed.history()));
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
    // Without the fault, no such read: the storage is read through the API client.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes", "--debug"], 0);
    let helm_runs: Vec<&str> = stderr.lines().filter(|l| l.contains("debug: ")).collect();
    assert!(!helm_runs.iter().any(|l| l.contains(" history ")), "{}:\n{stderr}", bed.version);
}
both_helms!(release_read_through_helm, super::a_release_the_api_client_cannot_read_is_read_through_helm);
