//! Interruptions end to end, with the real helm 3.19.0 and 4.1.4 on the bed: Ctrl-C and
//! Ctrl-Z on the terminal while helm upgrades, typed through helm into the installed
//! plugin in a pty (the keys operators press), a second Ctrl-C, and `kill -9` followed by
//! `--resume`. Whatever happens, no release is left `pending-*`.

#[path = "e2e/bed.rs"]
mod bed;
#[path = "e2e/pty.rs"]
mod pty;

use std::time::{Duration, Instant};

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::HelmVersion;
use pty::{Pty, helm_plugin_error};

/// Poll helm's history until `ready` holds (or fail after 60 s).
fn wait_for(bed: &Bed, what: &str, ready: impl Fn(&[(u64, String, String)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let history = bed.history();
        if ready(&history) {
            return;
        }
        assert!(Instant::now() < deadline, "{}: timed out waiting for {what}; history {history:?}", bed.version);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_pending(history: &[(u64, String, String)]) -> bool {
    history.iter().all(|(_, s, _)| !s.starts_with("pending"))
}

/// Ctrl-C on the terminal while helm upgrades, through helm: the plugin (not helm) gets
/// it, finishes the hop, stops at the next safe point, and helm passes on exit 5 after
/// the plugin's last word.
fn ctrl_c_during_a_hop_finishes_it_and_stops(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // Hop 1's migration runs 3 s, so that the Ctrl-C lands inside it however slow the machine.
    let args = ["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes", "--set", "migration.runSeconds=3"];
    let mut pty = Pty::upgrade(&bed, &args);
    // helm has started hop 1 once revision 2 exists.
    wait_for(&bed, "hop 1 to start", |h| h.len() >= 2);
    pty.control('c');
    pty.expect("interrupted: the step under way finishes, then the run stops at the next safe point (Ctrl-C again stops the step now)");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{}: helm passes the plugin's code on (130 would mean helm died): {rest}", bed.version);
    assert!(
        rest.contains("bsr stopped at 1.1.9: interrupted"),
        "{}: the hop under way was finished: {rest}",
        bed.version
    );
    // Nothing after helm's own last line: the plugin had ended before helm did.
    assert!(rest.trim_end().ends_with(&helm_plugin_error("safe-upgrade")), "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    assert_eq!(bed.history().last().unwrap().1, "deployed");
    let mut values = yaml_to_json(VALUES);
    values["migration"] = serde_json::json!({"runSeconds": 3});
    assert_eq!(bed.user_values(), values, "the run's values, --set included");
    // Running the same command again continues from there.
    bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
}
both_helms!(ctrl_c_during_a_hop, super::ctrl_c_during_a_hop_finishes_it_and_stops);

/// An upgrade through helm on a terminal whose hop is under way and stays so: a broken
/// image never becomes ready, so helm would wait the whole minute.
fn a_hop_that_waits(bed: &Bed) -> Pty {
    let pty = Pty::upgrade(
        bed,
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--yes",
            "--timeout",
            "60s",
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
        ],
    );
    wait_for(bed, "hop 1 to start", |h| h.len() >= 2);
    std::thread::sleep(Duration::from_millis(300));
    pty
}

/// A second Ctrl-C on the terminal, through helm: the plugin says what it leaves, tells its
/// helm to stop (helm marks the upgrade failed, not pending) and says what to do next.
fn a_second_ctrl_c_stops_helm_without_leaving_it_pending(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = a_hop_that_waits(&bed);
    let started = Instant::now();
    pty.control('c');
    pty.expect("Ctrl-C again stops the step now");
    pty.control('c');
    pty.expect("stopping now");
    let (rest, code) = pty.finish();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{}: the second Ctrl-C did not stop helm: {rest}",
        bed.version
    );
    assert_eq!(code, 1, "{}: {rest}", bed.version);
    assert!(rest.contains("helm safe-rollback bsr --to 1.0.4"), "{}: and what to do next: {rest}", bed.version);
    assert!(rest.trim_end().ends_with(&helm_plugin_error("safe-upgrade")), "{}: {rest}", bed.version);
    let history = bed.history();
    assert!(no_pending(&history), "{history:?}");
    assert_eq!(history.last().unwrap().1, "failed");
}
both_helms!(second_ctrl_c, super::a_second_ctrl_c_stops_helm_without_leaving_it_pending);

/// Ctrl-\ (SIGQUIT) on the terminal, through helm: left to its default it would kill the
/// plugin where it stands (the lock held, its helm still upgrading, the terminal's
/// foreground left to a dead group). It is a second Ctrl-C instead: the plugin says so and
/// what it leaves, tells its helm to stop (failed, not pending), gives the terminal back and
/// ends; helm, still alive, passes the code on and has the last word.
fn ctrl_backslash_stops_now_and_gives_the_terminal_back(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = a_hop_that_waits(&bed);
    let started = Instant::now();
    pty.control('\\');
    pty.expect("stopping now, as a second Ctrl-C does");
    pty.expect("is told to stop; helm marks what it was doing as failed");
    let (rest, code) = pty.finish();
    assert!(started.elapsed() < Duration::from_secs(30), "{}: Ctrl-\\ did not stop helm: {rest}", bed.version);
    assert_eq!(code, 1, "{}: {rest}", bed.version);
    assert!(rest.contains("helm safe-rollback bsr --to 1.0.4"), "{}: and what to do next: {rest}", bed.version);
    // helm outlived the plugin and printed its own line last: the plugin ended by itself.
    assert!(rest.trim_end().ends_with(&helm_plugin_error("safe-upgrade")), "{}: {rest}", bed.version);
    let history = bed.history();
    assert!(no_pending(&history), "{history:?}");
    assert_eq!(history.last().unwrap().1, "failed");
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "{}: the lock was given back: {record}", bed.version);
}
both_helms!(ctrl_backslash, super::ctrl_backslash_stops_now_and_gives_the_terminal_back);

/// Ctrl-Z on the terminal, through helm: a run cannot be suspended (it holds the lock and
/// its helm keeps working); it says so and goes on to the end.
fn ctrl_z_is_refused_and_the_run_goes_on(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = Pty::upgrade(&bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"]);
    wait_for(&bed, "hop 1 to start", |h| h.len() >= 2);
    pty.control('z');
    pty.expect("Ctrl-Z: a run cannot be suspended");
    let (rest, code) = pty.finish();
    assert_eq!(code, 0, "{}: {rest}", bed.version);
    assert!(rest.contains("bsr is at 1.2.6: done"), "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
}
both_helms!(ctrl_z, super::ctrl_z_is_refused_and_the_run_goes_on);

fn kill_9_then_resume_finishes_the_plan(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut child = bed
        .tool()
        .args(["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&bed, "hop 2 to start", |h| h.len() >= 3);
    child.kill().unwrap(); // SIGKILL: no cleanup, the lock stays.
    child.wait().unwrap();
    // The helm it started has its own process group and finishes on its own.
    wait_for(&bed, "the orphaned helm to finish", no_pending);
    // A plain new run is refused: the ledger is locked by the killed run.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 1);
    assert!(stderr.contains("locked") || stderr.contains("lock"), "{stderr}");
    // --resume checks that the holder is gone, takes the plan from the ledger and finishes.
    let (_, stderr) = bed.run_expect(&["bsr", "--resume", "--chart", "demo/bsr", "--yes"], 0);
    assert!(stderr.contains("resuming the upgrade to 1.3.0"), "{stderr}");
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.3.0");
    let history = bed.history();
    assert!(history.iter().all(|(_, s, _)| s == "superseded" || s == "deployed"), "{history:?}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(kill_9_then_resume, super::kill_9_then_resume_finishes_the_plan);

/// Ctrl-C before the run changes anything, through helm on a terminal: nothing is worth
/// finishing, so the run ends once the read under way returns, says nothing was changed,
/// prints no plan, and exits 5 — with the API slowed so the Ctrl-C lands in the reads.
fn ctrl_c_before_any_change_ends_the_run_at_once(version: HelmVersion) {
    let bed = Bed::behind_proxy(version);
    bed.install("bsr", "1.0.4", VALUES);
    let before = bed.history();
    bed.proxy().delay(Duration::from_millis(400));
    let mut pty = Pty::upgrade(&bed, &["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan", "--debug"]);
    // The plugin runs (and holds the terminal) once it has started its first helm process,
    // the listing chain's; its release read, through the API client, waits on the proxy.
    pty.expect("repo update");
    pty.control('c');
    pty.expect("interrupted: nothing has been changed; the run stops once the read under way returns (Ctrl-C again stops it now)");
    bed.proxy().delay(Duration::ZERO);
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{}: {rest}", bed.version);
    assert!(rest.contains("interrupted before any change: nothing was changed"), "{}: {rest}", bed.version);
    assert!(!rest.contains("HOP  FROM"), "{}: no plan is printed: {rest}", bed.version);
    // helm's own line (with --debug, helm 3 adds one of its own after it).
    assert!(rest.contains(&helm_plugin_error("safe-upgrade")), "{}: {rest}", bed.version);
    assert_eq!(bed.history(), before, "{}: nothing changed", bed.version);
    assert!(bed.ledger_record().is_none(), "{}: no ledger written", bed.version);
}
both_helms!(ctrl_c_before_any_change, super::ctrl_c_before_any_change_ends_the_run_at_once);
