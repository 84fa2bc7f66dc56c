//! The prompts as operators meet them: `helm safe-upgrade` / `helm safe-rollback` typed
//! on a terminal, the installed plugin started by real helm 3.19.0 and 4.1.4 in a pty
//! (`e2e/pty.rs`), on the bed. Continue, stop here (and the run after it), roll back this
//! hop, show the status, declining to start, the typed release name, Ctrl-C at a
//! prompt, and the operator's own `--set` values in a failed hop's message on their
//! terminal (and nowhere else).

#[path = "e2e/bed.rs"]
mod bed;
#[path = "e2e/pty.rs"]
mod pty;

use bed::{Bed, VALUES, yaml_to_json};
use helm_safe_upgrade::text::without_colour;
use kube_standin::testing::HelmVersion;
use pty::{Pty, bed_policy_path as policy, cursor_visibility, helm_plugin_error};
use serde_json::Value;

/// The pause menu's prompt, and the keys that pick each entry (dialoguer's Select: `j`
/// moves down, Enter picks; "continue" is preselected).
const PAUSE_PROMPT: &str = "What next? (arrows and Enter)";
const CONTINUE: &str = "";
const STOP_HERE: &str = "j";
const ROLL_BACK: &str = "jj";
const SHOW_STATUS: &str = "jjj";

/// The answer that has been typed is not part of what the tool prints; the pty echo is
/// off (rexpect turns it off), so `before` strings hold only the tool's output.
fn start_two_hops(bed: &Bed) -> Pty {
    start_two_hops_in(bed, Pty::upgrade)
}

/// [`start_two_hops`] in a pty of `spawn`'s making (e.g. one that keeps the escape codes).
fn start_two_hops_in(bed: &Bed, spawn: impl FnOnce(&Bed, &[&str]) -> Pty) -> Pty {
    let policy = policy();
    let mut pty = spawn(bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy]);
    let plan = without_colour(&pty.expect("Start the 2 hops? [y/N]"));
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
    let before = without_colour(&pty.expect(PAUSE_PROMPT));
    // Wrapped to the terminal's width: compared word by word.
    let words = before.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("1.1.9 is deployed and verified: 1 of 2 hops done in ")
            && words.contains(". Next: 1.1.9 → 1.2.6"),
        "{}: the pause names where the release is, the hops done and the next hop:\n{before}",
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
    pty.answer(CONTINUE);
    let (rest, code) = pty.finish();
    assert_eq!(code, 0, "{version}: {rest}");
    assert!(!rest.contains("Error: plugin"), "{version}: helm has nothing to add to a success: {rest}");
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
    pty.answer(STOP_HERE);
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: stopped by the operator, and helm passes the code on: {rest}");
    assert!(
        rest.contains("bsr stopped at 1.1.9: stopped by the operator; run the same command again to continue"),
        "{version}: {rest}"
    );
    // helm's own line comes last: the plugin had finished before helm printed it.
    assert!(rest.trim_end().ends_with(&helm_plugin_error("safe-upgrade")), "{version}: {rest}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}");
    assert_eq!(bed.server_version_label(), "1.1.9", "{version}");
    // The same command again, through helm on the terminal (unattended), says it continues
    // the stopped run, and goes on from 1.1.9: one hop, not two.
    let policy = policy();
    let mut again = Pty::upgrade(&bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy, "--yes"]);
    // ASCII only: the reader does not decode UTF-8 (the arrow).
    again.expect("continuing the upgrade 1.0.4 ");
    let (rest, code) = again.finish();
    assert_eq!(code, 0, "{version}: {rest}");
    assert!(rest.contains(": it stopped at 1.1.9"), "{version}: {rest}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"], "{version}: one hop");
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
    pty.answer(ROLL_BACK);
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
    let mut pty = Pty::upgrade(&bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy]);
    pty.expect("Start the 2 hops? [y/N]");
    pty.answer("n");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: {rest}");
    assert!(rest.contains("bsr stopped at 1.0.4: not started: the operator declined"), "{version}: {rest}");
    // The backup is made once the operator says yes: a declined run leaves none.
    let backups = bed.state.path().join("helm-safe-upgrade/backups");
    let left = std::fs::read_dir(&backups).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "{version}: a declined run left a backup in {}", backups.display());
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
    // A key that is none of the menu's does nothing; then "show status".
    pty.keys("x");
    pty.answer(SHOW_STATUS);
    // `helm status bsr`, then the same question again (the menu redraws its prompt at
    // every key, so the status is waited for first).
    let mut status = pty.expect("REVISION: 2");
    status.push_str(&pty.expect("1.1.9 is deployed and verified: 1 of 2 hops done"));
    pty.expect(PAUSE_PROMPT);
    for line in ["NAME: bsr", &format!("NAMESPACE: {}", bed.ns), "STATUS: deployed"] {
        assert!(status.contains(line), "{version}: no {line:?} in the status:\n{status}");
    }
    assert_eq!(bed.history().len(), 2, "{version}: showing the status changed nothing");
    pty.answer(STOP_HERE);
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: {rest}");
    assert!(rest.contains("bsr stopped at 1.1.9"), "{version}: {rest}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
}
both_helms!(pause_status, super::status_at_the_pause_then_stop);

/// A rollback that may lose data asks for the release name, typed: a wrong name is asked
/// again (a few times), nothing typed stops with nothing changed, the right name goes back
/// by the policy's procedure. The warnings are said once, in the plan.
fn rollback_asks_for_the_release_name(version: HelmVersion) {
    const TYPE_IT: &str = "Type the release name (bsr) to go on, or nothing to stop";
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    let rollback = |bed: &Bed| {
        let mut pty = Pty::helm(bed, "safe-rollback", &["bsr", "--chart", "demo/bsr", "--policy", policy.as_str()]);
        let before = pty.expect(TYPE_IT);
        assert!(before.contains("rollback bsr 1.1.9 → 1.0.4"), "{}: the plan comes first:\n{before}", bed.version);
        assert!(before.contains("This rollback may lose data"), "{}: the warning is shown:\n{before}", bed.version);
        // Nothing is said twice (the warnings were once under the plan and again here).
        let lines: Vec<&str> = before.lines().map(str::trim).filter(|l| l.len() > 20).collect();
        for line in &lines {
            assert_eq!(lines.iter().filter(|l| *l == line).count(), 1, "{}: said twice: {line}\n{before}", bed.version);
        }
        pty
    };
    // Three wrong names: each says it did not match; then stopped, nothing changed.
    let mut pty = rollback(&bed);
    pty.answer("y");
    pty.expect("\"y\" did not match the release name bsr; 2 tries left");
    pty.expect(TYPE_IT);
    pty.answer("bsr-prod");
    pty.expect("\"bsr-prod\" did not match the release name bsr; 1 try left");
    pty.expect(TYPE_IT);
    pty.answer("BSR");
    pty.expect("\"BSR\" did not match the release name bsr: stopping");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{}: a wrong name changes nothing", bed.version);
    // Nothing typed: stopped at once.
    let mut pty = rollback(&bed);
    pty.answer("");
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{}: {rest}", bed.version);
    assert!(rest.contains("not started: the operator declined"), "{}: {rest}", bed.version);
    // A typo, then the release name: rolled back, down-migrated to 1.0.4's schema.
    let mut pty = rollback(&bed);
    pty.answer("bs");
    pty.expect("did not match");
    pty.expect(TYPE_IT);
    pty.answer("bsr");
    let (rest, code) = pty.finish();
    assert_eq!(code, 0, "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed().last().unwrap(), "bsr-1.0.4");
    assert!(bed.get("v1", "configmaps", "bsr-migratedownto-210").is_some(), "{}: the down-migration ran", bed.version);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(typed_confirmation, super::rollback_asks_for_the_release_name);

/// A pty that keeps the escape codes, as the terminal receives them, for `plugin`.
fn raw(plugin: &'static str) -> impl Fn(&Bed, &[&str]) -> Pty {
    move |bed, args| Pty::raw_plugin(bed, plugin, &[], args, &[])
}

/// After a Ctrl-C at a prompt, the cursor is visible: dialoguer hides it while a `[y/N]`
/// or a menu reads keys and does not show it again when the read is interrupted, so the
/// run must. `hidden`: whether this prompt hides it (a typed answer's prompt does not).
fn assert_cursor_shown(raw: &str, hidden: bool, version: HelmVersion) {
    let seen = cursor_visibility(raw);
    assert_eq!(seen.contains(&false), hidden, "{version}: cursor escapes {seen:?} in:\n{raw:?}");
    assert!(
        !seen.contains(&false) || seen.last() == Some(&true),
        "{version}: the cursor is left hidden ({seen:?}):\n{raw:?}"
    );
}

/// Ctrl-C at the pause between hops stops there, and says it was Ctrl-C: the release
/// stays at the verified version, nothing is left pending, the cursor is shown again.
fn ctrl_c_at_the_pause_stops_there(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let mut pty = start_two_hops_in(&bed, raw("safe-upgrade"));
    expect_pause(&mut pty);
    pty.control('c');
    let (rest, all, code) = pty.finish_all();
    assert_cursor_shown(&all, true, version);
    let rest = without_colour(&rest);
    assert_eq!(code, 5, "{}: {rest}", bed.version);
    assert!(rest.contains("interrupted at the prompt: stopping now"), "{}: {rest}", bed.version);
    assert!(!rest.contains("the step under way finishes"), "{}: nothing was under way: {rest}", bed.version);
    assert!(rest.contains("bsr stopped at 1.1.9: interrupted (Ctrl-C) at the pause"), "{}: {rest}", bed.version);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
    assert_eq!(bed.history().last().unwrap().1, "deployed");
}
both_helms!(pause_ctrl_c, super::ctrl_c_at_the_pause_stops_there);

/// Ctrl-C at the start confirmation stops at once, changes nothing, is not "declined",
/// and leaves the cursor shown.
fn ctrl_c_at_the_confirmation_stops_at_once(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    let mut pty = raw("safe-upgrade")(&bed, &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--policy", &policy]);
    pty.expect("Start the 2 hops? [y/N]");
    pty.control('c');
    let (rest, all, code) = pty.finish_all();
    assert_cursor_shown(&all, true, version);
    let rest = without_colour(&rest);
    assert_eq!(code, 5, "{version}: {rest}");
    assert!(rest.contains("interrupted at the prompt: stopping now (nothing was under way)"), "{version}: {rest}");
    assert!(!rest.contains("the step under way finishes"), "{version}: {rest}");
    assert!(
        rest.contains("bsr stopped at 1.0.4: not started: interrupted (Ctrl-C) at the confirmation; nothing changed"),
        "{version}: {rest}"
    );
    assert!(!rest.contains("declined"), "{version}: {rest}");
    assert!(rest.trim_end().ends_with(&helm_plugin_error("safe-upgrade")), "{version}: {rest}");
    assert_eq!(bed.history().len(), 1, "{version}");
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "{version}: {record}");
    assert_eq!(record["runs"].as_array().unwrap().last().unwrap()["outcome"], "interrupted", "{version}: {record}");
}
both_helms!(confirmation_ctrl_c, super::ctrl_c_at_the_confirmation_stops_at_once);

/// Ctrl-C at the typed release name (a rollback that may lose data) stops at once: it
/// says it was interrupted, not declined, exits 5 through helm, changes nothing, gives the
/// lock back, and leaves the cursor visible.
fn ctrl_c_at_the_typed_name_stops_at_once(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    let history = bed.history();
    let mut pty = raw("safe-rollback")(&bed, &["bsr", "--chart", "demo/bsr", "--policy", &policy]);
    pty.expect("to go on, or nothing to stop");
    pty.control('c');
    let (rest, all, code) = pty.finish_all();
    // The typed answer's prompt shows the cursor (it is where the name is typed).
    assert_cursor_shown(&all, false, version);
    let rest = without_colour(&rest);
    assert_eq!(code, 5, "{version}: helm passes the plugin's code on: {rest}");
    assert!(rest.contains("interrupted at the prompt: stopping now (nothing was under way)"), "{version}: {rest}");
    assert!(
        rest.contains("bsr stopped at 1.1.9: not started: interrupted (Ctrl-C) at the confirmation; nothing changed"),
        "{version}: {rest}"
    );
    assert!(!rest.contains("declined") && !rest.contains("did not match"), "{version}: {rest}");
    assert!(!rest.contains("the step under way finishes"), "{version}: nothing was under way: {rest}");
    assert!(rest.trim_end().ends_with(&helm_plugin_error("safe-rollback")), "{version}: {rest}");
    assert_eq!(bed.history(), history, "{version}: no new revision");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"], "{version}");
    assert!(bed.get("v1", "configmaps", "bsr-migratedownto-210").is_none(), "{version}: no down-migration");
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "{version}: {record}");
    assert_eq!(record["runs"].as_array().unwrap().last().unwrap()["outcome"], "interrupted", "{version}: {record}");
}
both_helms!(typed_name_ctrl_c, super::ctrl_c_at_the_typed_name_stops_at_once);

/// Colour and width through helm on a terminal. Colour is on by default (auto: a person
/// watches); NO_COLOR turns it off, and so does `--color never` written after the
/// plugin's name or before it (helm 4 reads its own `--color` and passes it on; helm 3
/// passes on a flag it does not know). A terminal that does not say its size (this pty)
/// is not wrapped; COLUMNS says how wide.
fn colour_and_width_on_a_terminal(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    let plan = |helm_flags: &[&str], extra: &[&str], env: &[(&str, &str)]| -> String {
        let mut args = vec!["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--policy", &policy, "--plan"];
        args.extend_from_slice(extra);
        let (out, code) = Pty::raw(&bed, helm_flags, &args, env).finish();
        assert_eq!(code, 0, "{version} {helm_flags:?} {extra:?} {env:?}: {out}");
        assert!(out.contains("HOP  FROM"), "{version}: the plan is shown: {out}");
        out
    };
    let auto = plan(&[], &[], &[]);
    assert!(auto.contains("\x1b[1mupgrade bsr 1.0.4 → 1.3.0\x1b[0m"), "{version}: {auto:?}");
    assert!(auto.contains("\x1b[1mHOP  FROM   TO"), "{version}: {auto:?}");
    let widest = |text: &str| text.lines().map(|l| helm_safe_upgrade::text::width(l.trim_end())).max().unwrap();
    assert!(widest(&auto) > 80, "{version}: a pty of unknown size is not wrapped: {auto}");
    let never_after = plan(&[], &["--color", "never"], &[]);
    assert!(!never_after.contains('\x1b'), "{version}: {never_after:?}");
    assert_eq!(
        never_after,
        helm_safe_upgrade::text::without_colour(&auto),
        "{version}: colour adds codes, never words"
    );
    let never_before = plan(&["--color", "never"], &[], &[]);
    assert!(!never_before.contains('\x1b'), "{version}: `helm --color never safe-upgrade`: {never_before:?}");
    let narrow = plan(&[], &[], &[("NO_COLOR", "1"), ("COLUMNS", "80")]);
    assert!(!narrow.contains('\x1b'), "{version}: NO_COLOR: {narrow:?}");
    assert!(widest(&narrow) <= 80, "{version}: COLUMNS=80: {narrow}");
    let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(words(&narrow), words(&never_after), "{version}: wrapping moves only spaces");
}
both_helms!(colour_and_width, super::colour_and_width_on_a_terminal);

/// The JSON document in what the pty showed: stdout and stderr share the terminal, and
/// the report is printed last, from a line `{` to a line `}`.
fn json_document(output: &str) -> Value {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let start = lines.iter().position(|l| *l == "{").unwrap_or_else(|| panic!("no JSON document:\n{output}"));
    let end = lines.iter().rposition(|l| *l == "}").unwrap_or_else(|| panic!("no JSON document:\n{output}"));
    serde_json::from_str(&lines[start..=end].join("\n")).unwrap_or_else(|e| panic!("{e}:\n{output}"))
}

fn a_failed_hop_shows_the_operators_values_on_their_terminal_only(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (policy, timeout) = (policy(), bed.fail_timeout("4s"));
    let mut pty = Pty::upgrade(
        &bed,
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "-o",
            "json",
            "--timeout",
            &timeout,
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
            "--set",
            "postgres.password=s3cret",
        ],
    );
    pty.expect("Start the 1 hop? [y/N]");
    pty.answer("y");
    pty.expect("hop 1 failed: ");
    let failure = pty.expect("bringing bsr back to 1.0.4");
    // The value that broke the hop, as typed; the password hidden by its key.
    assert!(failure.contains("--set image.tag=broken --set migration.imageTag=1.1.9"), "{version}: {failure}");
    assert!(failure.contains("--set 'postgres.password=***'"), "{version}: {failure}");
    assert!(failure.contains("bufd:broken"), "{version}: what the pods say, as they say it: {failure}");
    let (rest, code) = pty.finish();
    assert_eq!(code, 4, "{version}: {rest}");
    for shown in [&failure, &rest] {
        assert!(!shown.contains("s3cret"), "{version}: the password reached the terminal:\n{shown}");
    }
    // The same run's report and ledger: anyone may read them, so no value at all.
    let report = json_document(&rest);
    assert_eq!(report["result"], "recovered", "{version}: {rest}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("'image.tag=***'") && error.contains("'postgres.password=***'"), "{version}: {error}");
    let ledger = bed.ledger_record().expect("the ledger").to_string();
    assert!(ledger.contains("'image.tag=***'"), "{version}: the hop's message is recorded: {ledger}");
    for kept in [report.to_string(), ledger] {
        assert!(!kept.contains("broken") && !kept.contains("s3cret"), "{version}: leaked:\n{kept}");
    }
}
both_helms!(set_values_on_the_terminal, super::a_failed_hop_shows_the_operators_values_on_their_terminal_only);

/// While helm waits, the spinner says what the rollout does: each workload's pods
/// (updated and ready out of wanted), the hook Job of the hop and the time left of
/// `--timeout`. The migration runs 3 s on the bed so that the display has time to show.
fn the_spinner_follows_the_rollout(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    let mut pty = Pty::upgrade(
        &bed,
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
            "2m",
            "--set",
            "migration.runSeconds=3",
        ],
    );
    let shown = pty.expect("of --timeout 2m left");
    let rest = pty.expect("Deployment bsr-server: ");
    let (end, code) = pty.finish();
    assert_eq!(code, 0, "{version}: {shown}{rest}{end}");
    let all = format!("{shown}{rest}{end}");
    assert!(all.contains("hook Job bsr-migrate"), "{version}: the hook Job is shown: {all}");
    assert!(all.contains("updated"), "{version}: {all}");
}
both_helms!(spinner_follows_the_rollout, super::the_spinner_follows_the_rollout);

/// Through helm on a terminal, a hop with an estimate (the release's first hop, on record)
/// shows its time against it and the time left beside the step's spinner.
fn the_spinner_shows_the_hop_against_its_estimate(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = policy();
    bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes"], 0);
    let mut pty = Pty::upgrade(
        &bed,
        &[
            "bsr",
            "--to",
            "1.2.6",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--yes",
            "--set",
            "migration.runSeconds=3",
        ],
    );
    // ASCII only: the pty's reader does not decode UTF-8 (`→`, `·`).
    let heading = pty.expect("(rolling), expected ~");
    let spinner = pty.expect("deploy 1.2.6 (");
    let clock = pty.expect(" left)");
    let (end, code) = pty.finish();
    assert_eq!(code, 0, "{version}: {heading}{spinner}{clock}{end}");
    assert!(heading.contains("hop 1/1: 1.1.9 "), "{version}: {heading}");
    assert!(
        clock.contains(" hop ") && clock.contains(" of ~"),
        "{version}: the hop's time against its estimate: {clock}"
    );
    assert!(end.contains("hop 1/1 done in ") && end.contains("(expected ~"), "{version}: {end}");
}
both_helms!(spinner_shows_the_estimate, super::the_spinner_shows_the_hop_against_its_estimate);
