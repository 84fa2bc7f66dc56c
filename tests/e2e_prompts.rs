//! The real prompts on a real terminal: the plugin runs in a pty (so stdin is a terminal
//! and it asks), against helm 3.19.0 and 4.1.4 on the bed. Continue, stop here, roll back
//! this hop, declining to start, and showing the status at a pause.

#[path = "e2e/bed.rs"]
mod bed;

use std::process::{Command, Stdio};

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::{HelmVersion, kubectl_path};
use rexpect::process::WaitStatus;
use rexpect::session::Options;
use rexpect::session::{PtySession, spawn_with_options};
use serde_json::Value;

/// Every expectation waits this long at most (a hop is a `helm upgrade --wait`).
const TIMEOUT_MS: u64 = 60_000;

/// The bed's BSR policy, as an absolute path.
fn policy() -> String {
    format!("{}/bed/policies/bsr-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// The plugin in a pty: the bed's environment (as [`Bed::tool`] sets it), but stdin,
/// stdout and stderr on the terminal, `CI` removed, and the bed's kubectl first on PATH
/// (the policy's `run` steps call `kubectl` by name).
struct Pty {
    session: PtySession,
    version: HelmVersion,
    /// What was read so far, for failure messages.
    seen: String,
}

impl Pty {
    fn spawn(bed: &Bed, args: &[&str]) -> Pty {
        Pty::spawn_with_env(bed, args, &[])
    }

    fn spawn_with_env(bed: &Bed, args: &[&str], env: &[(&str, &str)]) -> Pty {
        let mut cmd: Command = bed.tool();
        cmd.envs(env.iter().copied());
        let kubectl_dir = kubectl_path().parent().unwrap().to_path_buf();
        let path = std::env::join_paths(
            std::iter::once(kubectl_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        cmd.args(args)
            .env_remove("CI")
            .env("PATH", path)
            // The pty is the child's stdin, stdout and stderr: Bed::tool() sets stdin to
            // null, which exec would apply over the pty.
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        let options = Options::new().timeout_ms(Some(TIMEOUT_MS)).strip_ansi_escape_codes(true);
        let session = spawn_with_options(cmd, options).expect("spawn helm-safe-upgrade in a pty");
        Pty { session, version: bed.version, seen: String::new() }
    }

    /// Wait for `needle` (in the output after the previous expectation).
    fn expect(&mut self, needle: &str) -> String {
        match self.session.exp_string(needle) {
            Ok(before) => {
                let before = utf8(&before);
                self.seen.push_str(&before);
                self.seen.push_str(needle);
                before
            }
            Err(e) => panic!("{}: waiting for {needle:?}: {e}\n--- output so far\n{}", self.version, self.seen),
        }
    }

    /// Type an answer and Enter.
    fn answer(&mut self, line: &str) {
        self.session.send_line(line).expect("write to the pty");
    }

    /// Read to the end of the output and return (everything after the last expectation,
    /// exit code).
    fn finish(mut self) -> (String, i32) {
        let rest = match self.session.exp_eof() {
            Ok(rest) => utf8(&rest),
            Err(e) => panic!("{}: waiting for the end: {e}\n--- output so far\n{}", self.version, self.seen),
        };
        self.seen.push_str(&rest);
        match self.session.process().wait() {
            Ok(WaitStatus::Exited(_, code)) => (rest, code),
            other => panic!("{}: the run did not exit normally: {other:?}\n--- output\n{}", self.version, self.seen),
        }
    }
}

/// rexpect hands over each byte read as one `char` (Latin-1): put the UTF-8 back
/// together (the plan says `1.0.4 → 1.2.6`). Needles are ASCII, so they match as they are.
fn utf8(latin1: &str) -> String {
    let bytes: Vec<u8> = latin1.chars().map(|c| u8::try_from(u32::from(c)).expect("one byte per char")).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The answer that has been typed is not part of what the tool prints; the pty echo is
/// off (rexpect turns it off), so `before` strings hold only the tool's output.
fn start_two_hops(bed: &Bed) -> Pty {
    let policy = policy();
    let mut pty = Pty::spawn(bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy]);
    let plan = pty.expect("Start the 2 hops? [y/N]");
    assert!(plan.contains("upgrade bsr 1.0.4 → 1.2.6"), "{}: the plan is shown first:\n{plan}", bed.version);
    assert!(
        plan.contains("1.0.4  1.1.9") && plan.contains("1.1.9  1.2.6"),
        "{}: both hops in the plan:\n{plan}",
        bed.version
    );
    assert_eq!(bed.history().len(), 1, "{}: nothing deployed before the answer", bed.version);
    pty.answer("y");
    pty
}

/// Wait for the pause after hop 1 and check what it says.
fn expect_pause(pty: &mut Pty) {
    let before = pty.expect("[c]ontinue, [s]top here, [r]oll back this hop, show s[t]atus?");
    assert!(
        before.contains("1.1.9 is deployed and verified (1/2). Next: 1.1.9 → 1.2.6"),
        "{}: the pause names where the release is and the next hop:\n{before}",
        pty.version
    );
}

fn pods_of_version(bed: &Bed, version: &str) -> usize {
    bed.pods_of_version(version).len()
}

fn continue_at_the_pause(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = start_two_hops(&bed);
    expect_pause(&mut pty);
    // At the pause, hop 1 is done and hop 2 has not started.
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}");
    pty.answer("c");
    let (rest, code) = pty.finish();
    assert_eq!(code, 0, "{version}: {rest}");
    assert!(rest.contains("bsr is at 1.2.6: done"), "{version}: {rest}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"], "{version}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}");
    assert_eq!(bed.server_version_label(), "1.2.6", "{version}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "{version}: values carried exactly");
}
both_helms!(pause_continue, super::continue_at_the_pause);

fn stop_here_then_run_again(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = start_two_hops(&bed);
    expect_pause(&mut pty);
    pty.answer("s");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: stopped by the operator: {rest}");
    assert!(
        rest.contains("bsr stopped at 1.1.9: stopped by the operator; run the same command again to continue"),
        "{version}: {rest}"
    );
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}");
    assert_eq!(bed.server_version_label(), "1.1.9", "{version}");
    // The same command again (unattended) goes on from 1.1.9: one hop, not two.
    let policy = policy();
    let (stdout, _) =
        bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-o", "json"], 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "completed", "{version}: {stdout}");
    assert_eq!(report["plan"]["hops"].as_array().unwrap().len(), 1, "{version}: {stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"], "{version}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "{version}");
}
both_helms!(pause_stop, super::stop_here_then_run_again);

fn roll_back_this_hop(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = start_two_hops(&bed);
    expect_pause(&mut pty);
    assert!(pods_of_version(&bed, "1.1.9") > 0, "{version}: 1.1.9 runs at the pause");
    assert!(bed.get("v1", "configmaps", "bsr-migratedownto-210").is_none(), "{version}");
    pty.answer("r");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: a rolled-back hop ends the run as stopped: {rest}");
    assert!(rest.contains("bsr stopped at 1.0.4: hop 1 rolled back by the operator"), "{version}: {rest}");
    // The policy's minor downgrade (migrate-down), step by step, in order.
    let steps: Vec<usize> =
        ["deploy 1.0.4: ok", "wait until no 1.1.9 pod remains: ok", "run bufd migratedownto: ok", "verify 1.0.4: ok"]
            .iter()
            .map(|s| rest.find(s).unwrap_or_else(|| panic!("{version}: no step {s:?} in:\n{rest}")))
            .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{version}: steps out of order ({steps:?}):\n{rest}");
    // Deployed 1.0.4, no 1.1.9 pod left, the down-migration to 1.0.4's schema ran once.
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.0.4"], "{version}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}");
    assert_eq!(bed.server_version_label(), "1.0.4", "{version}");
    assert_eq!(pods_of_version(&bed, "1.1.9"), 0, "{version}: no 1.1.9 pod remains");
    assert!(pods_of_version(&bed, "1.0.4") > 0, "{version}: 1.0.4 runs");
    let cm = bed.get("v1", "configmaps", "bsr-migratedownto-210").expect("migratedownto 210 ran");
    assert_eq!(cm["data"]["from"], "1.1.9", "{version}: {cm}");
    assert_eq!(cm["data"]["to"], "1.0.4", "{version}: {cm}");
    assert_eq!(cm["data"]["schema"], "210", "{version}: {cm}");
    let migrations = bed
        .list("v1", "configmaps")
        .into_iter()
        .filter(|c| c["metadata"]["name"].as_str().unwrap_or_default().starts_with("bsr-migratedownto-"))
        .count();
    assert_eq!(migrations, 1, "{version}: one down-migration");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "{version}: user values unchanged");
}
both_helms!(pause_roll_back, super::roll_back_this_hop);

fn declining_to_start_changes_nothing(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let before = bed.history();
    let policy = policy();
    let mut pty = Pty::spawn(&bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy]);
    pty.expect("Start the 2 hops? [y/N]");
    pty.answer("n");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: {rest}");
    assert!(rest.contains("bsr stopped at 1.0.4: not started: the operator declined"), "{version}: {rest}");
    assert_eq!(bed.history(), before, "{version}: no new revision");
    assert_eq!(bed.history().len(), 1, "{version}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "{version}");
    // The lock was given back: an unattended run right after is not refused.
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
}
both_helms!(decline_to_start, super::declining_to_start_changes_nothing);

fn status_at_the_pause_then_stop(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = start_two_hops(&bed);
    expect_pause(&mut pty);
    // An answer that is none of the choices is asked again.
    pty.answer("x");
    pty.expect("please answer c, s, r or t");
    pty.expect("[c]ontinue, [s]top here, [r]oll back this hop, show s[t]atus?");
    pty.answer("t");
    // `helm status bsr`, then the same question again.
    let status = pty.expect("[c]ontinue, [s]top here, [r]oll back this hop, show s[t]atus?");
    for line in ["NAME: bsr", &format!("NAMESPACE: {}", bed.ns), "STATUS: deployed", "REVISION: 2"] {
        assert!(status.contains(line), "{version}: no {line:?} in the status:\n{status}");
    }
    assert!(status.contains("1.1.9 is deployed and verified (1/2)"), "{version}: the pause is asked again:\n{status}");
    assert_eq!(bed.history().len(), 2, "{version}: showing the status changed nothing");
    pty.answer("s");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: {rest}");
    assert!(rest.contains("bsr stopped at 1.1.9"), "{version}: {rest}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
}
both_helms!(pause_status, super::status_at_the_pause_then_stop);

/// A rollback that may lose data asks for the release name, typed: a wrong name stops
/// with nothing changed; the right one goes back by the policy's procedure.
fn rollback_asks_for_the_release_name(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    let rollback = |bed: &Bed| {
        let mut cmd_args = vec!["bsr", "--chart", "demo/bsr"];
        cmd_args.extend(["--policy", policy.as_str()]);
        let mut pty = Pty::spawn_with_env(bed, &cmd_args, &[("HELM_PLUGIN_NAME", "safe-rollback")]);
        let before = pty.expect("Type the release name (bsr) to go on, anything else to stop:");
        assert!(before.contains("rollback bsr 1.1.9 → 1.0.4"), "{}: the plan comes first:\n{before}", bed.version);
        assert!(before.contains("This rollback may lose data"), "{}: the warning is shown:\n{before}", bed.version);
        pty
    };
    // The wrong name: stopped, nothing changed.
    let mut pty = rollback(&bed);
    pty.answer("y");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{}: a wrong name changes nothing", bed.version);
    // The release name: rolled back, down-migrated to 1.0.4's schema.
    let mut pty = rollback(&bed);
    pty.answer("bsr");
    let (rest, code) = pty.finish();
    assert_eq!(code, 0, "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.0.4");
    assert!(bed.get("v1", "configmaps", "bsr-migratedownto-210").is_some(), "{}: the down-migration ran", bed.version);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(typed_confirmation, super::rollback_asks_for_the_release_name);

/// Ctrl-C at the pause between hops is "stop here": the release stays at the verified
/// version, nothing is left pending.
fn ctrl_c_at_the_pause_stops_there(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = start_two_hops(&bed);
    expect_pause(&mut pty);
    pty.session.send_control('c').expect("send Ctrl-C to the pty");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{}: {rest}", bed.version);
    assert!(rest.contains("bsr stopped at 1.1.9"), "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    assert_eq!(bed.history().last().unwrap().1, "deployed");
}
both_helms!(pause_ctrl_c, super::ctrl_c_at_the_pause_stops_there);
