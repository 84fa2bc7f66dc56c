//! The history rendered from hand-made records: a release's story (upgrade, a stop at the
//! pause, the run that continued it, a failed hop brought back, a rollback), a record
//! edited to hold escape sequences, a schema 2 record, dropped entries, a crashed run.

use super::*;
use crate::run::ledger::{HopOutcome, InProgress, Lock};

fn v(s: &str) -> ChartVersion {
    ChartVersion::parse(s).unwrap()
}

const SUBJECT: Subject<'static> =
    Subject { release: "bsr", namespace: "bsr", location: "ConfigMap helm-safe-upgrade.bsr in namespace bsr" };

fn run_record(id: u64, started: &str, ended: Option<&str>, from: &str, to: &str) -> RunRecord {
    RunRecord {
        id,
        started_at: started.into(),
        ended_at: ended.map(String::from),
        holder: format!("ana@box-1 pid {}", 100 + id),
        command: "helm safe-upgrade bsr --to *** --chart *** --yes".into(),
        direction: "upgrade".into(),
        from: v(from),
        to: v(to),
        outcome: None,
        at: None,
        message: None,
        steps: vec![],
    }
}

fn ended(mut run: RunRecord, outcome: &str, at: &str, message: Option<&str>) -> RunRecord {
    run.outcome = Some(outcome.into());
    run.at = Some(v(at));
    run.message = message.map(String::from);
    run
}

fn step(hop: Option<usize>, action: &str, detail: &str, outcome: &str, ms: u64) -> StepRecord {
    StepRecord {
        hop,
        action: action.into(),
        detail: detail.into(),
        outcome: outcome.into(),
        duration_ms: ms,
        waited_for_operator: false,
        way_back: false,
    }
}

fn back(mut step: StepRecord) -> StepRecord {
    step.way_back = true;
    step
}

/// A hop record of run `run` (None: written before schema 3, without run, index or
/// procedure).
#[allow(clippy::too_many_arguments)]
fn hop_record(
    run: Option<u64>,
    index: usize,
    from: &str,
    to: &str,
    started: &str,
    ended: Option<&str>,
    outcome: HopOutcome,
    work_ms: Option<u64>,
) -> HopRecord {
    HopRecord {
        run,
        index: run.map(|_| index),
        from: v(from),
        to: v(to),
        kind: "minor".into(),
        started_at: started.into(),
        ended_at: ended.map(String::from),
        outcome,
        message: None,
        procedure: run.map(|_| "rolling".into()),
        work_ms,
        downtime_ms: None,
    }
}

/// The release's story, as the ledger of a run of this version records it.
fn story() -> Ledger {
    let mut l = Ledger::new("bsr", "bsr");
    // 1. One hop, unattended.
    let mut r1 = ended(
        run_record(1, "2026-11-22T05:46:21Z", Some("2026-11-22T05:46:25Z"), "1.0.4", "1.1.9"),
        "completed",
        "1.1.9",
        None,
    );
    r1.command = "helm safe-upgrade bsr --to *** --chart *** --yes --set ***".into();
    r1.steps =
        vec![step(Some(1), "deploy", "deploy 1.1.9", "ok", 2100), step(Some(1), "verify", "verify 1.1.9", "ok", 200)];
    l.hops.push(hop_record(
        Some(1),
        1,
        "1.0.4",
        "1.1.9",
        "2026-11-22T05:46:22Z",
        Some("2026-11-22T05:46:24Z"),
        HopOutcome::Succeeded,
        Some(2300),
    ));
    // 2. Two hops, stopped by the operator at the pause after the first.
    let mut r2 = ended(
        run_record(2, "2026-11-22T05:47:00Z", Some("2026-11-22T05:47:40Z"), "1.1.9", "1.3.0"),
        "stopped",
        "1.2.6",
        Some("stopped by the operator; run the same command again to continue"),
    );
    r2.steps =
        vec![step(Some(1), "deploy", "deploy 1.2.6", "ok", 1800), step(Some(1), "verify", "verify 1.2.6", "ok", 200)];
    l.hops.push(hop_record(
        Some(2),
        1,
        "1.1.9",
        "1.2.6",
        "2026-11-22T05:47:05Z",
        Some("2026-11-22T05:47:07Z"),
        HopOutcome::Succeeded,
        Some(2000),
    ));
    // 3. The same command again: the last hop fails and is brought back.
    let mut r3 = ended(
        run_record(3, "2026-11-22T05:48:00Z", Some("2026-11-22T05:50:12Z"), "1.2.6", "1.3.0"),
        "recovered",
        "1.2.6",
        Some(
            "hop 1 failed: upgrade bsr to 1.3.0 failed (exit 1): helm upgrade --set 'image.tag=***' …\nError: UPGRADE FAILED: context deadline exceeded",
        ),
    );
    r3.steps = vec![
        step(Some(1), "deploy", "deploy 1.3.0", "failed", 120_400),
        back(step(Some(1), "deploy", "deploy 1.2.6", "ok", 3000)),
        back(step(Some(1), "wait-gone", "wait until no 1.3.0 pod remains", "ok", 1500)),
        back(step(Some(1), "run", "run bufd migratedownto", "ok", 4200)),
        back(step(Some(1), "verify", "verify 1.2.6", "ok", 300)),
    ];
    let mut failed = hop_record(
        Some(3),
        1,
        "1.2.6",
        "1.3.0",
        "2026-11-22T05:48:05Z",
        Some("2026-11-22T05:50:05Z"),
        HopOutcome::Failed,
        Some(120_400),
    );
    failed.message = Some("upgrade bsr to 1.3.0 failed (exit 1)".into());
    l.hops.push(failed);
    // 4. A rollback whose confirmation waited for the operator, with a snapshot.
    let mut r4 = ended(
        run_record(4, "2026-11-22T06:00:00Z", Some("2026-11-22T06:03:10Z"), "1.2.6", "1.1.9"),
        "completed",
        "1.1.9",
        None,
    );
    r4.direction = "rollback".into();
    r4.command = "helm safe-rollback bsr --yes --accept-data-loss".into();
    let mut confirm = step(Some(1), "confirm", "confirm", "ok", 95_000);
    confirm.waited_for_operator = true;
    r4.steps = vec![
        step(None, "snapshot", "snapshot", "ok", 4000),
        confirm,
        step(Some(1), "deploy", "deploy 1.1.9", "ok", 2000),
    ];
    let mut down = hop_record(
        Some(4),
        1,
        "1.2.6",
        "1.1.9",
        "2026-11-22T06:00:10Z",
        Some("2026-11-22T06:03:00Z"),
        HopOutcome::Succeeded,
        Some(2000),
    );
    down.kind = "minor-downgrade".into();
    down.procedure = Some("migrate-down".into());
    down.downtime_ms = Some(2000);
    l.hops.push(down);
    l.snapshots.push(SnapshotRecord {
        run: Some(4),
        version: v("1.2.6"),
        taken_at: "2026-11-22T06:00:05Z".into(),
        how: "command".into(),
    });
    l.runs = vec![r1, r2, r3, r4];
    l.runs_recorded = 4;
    l
}

#[test]
fn the_story_of_a_release_in_order() {
    let history = history(&story(), SUBJECT, None);
    let text = table(&history, Look::PLAIN);
    insta::assert_snapshot!("story", text);
    // Each run once, in time order.
    let headers: Vec<usize> =
        ["(run 1)", "(run 2)", "(run 3)", "(run 4)"].iter().map(|h| text.find(h).unwrap()).collect();
    assert!(headers.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("  stopped at 1.2.6 in 40s: stopped by the operator"), "{text}");
    // The way back is apart from the hop's own steps, under the hop it brought back.
    let failed = text.find("hop 1: 1.2.6 → 1.3.0 (minor, rolling): failed in 2m 00s").unwrap();
    let way_back = text.find("    way back to 1.2.6:\n      deploy 1.2.6: ok in 3.0s").unwrap();
    assert!(failed < way_back, "{text}");
    assert!(text.contains("      run bufd migratedownto: ok in 4.2s"), "{text}");
    assert!(text.contains("    confirm: ok in 1m 35s, waiting for the operator"), "{text}");
    assert!(text.contains("  preflight: snapshot: ok in 4.0s"), "{text}");
    assert!(text.contains("(minor-downgrade, migrate-down): succeeded in 2.0s, downtime 2.0s"), "{text}");
    assert!(text.contains("  snapshot taken 2026-11-22T06:00:05Z while 1.2.6 ran: command"), "{text}");
    assert!(!text.contains("dropped"), "nothing was dropped: {text}");
    let json: serde_json::Value = serde_json::from_str(&json(&history)).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 4);
    assert_eq!(json["runs"][2]["hops"][0]["way_back"].as_array().unwrap().len(), 4, "{json}");
    assert_eq!(json["runs"][2]["hops"][0]["steps"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(json["runs"][3]["preflight"][0]["action"], "snapshot");
    assert_eq!(json["runs"][3]["snapshots"][0]["how"], "command");
    assert_eq!(json["runs"][0]["duration_ms"], 4000);
    assert_eq!(json["runs"][0]["who"], "ana@box-1");
    assert_eq!(json["dropped"], serde_json::json!({"runs": 0, "hops": 0, "snapshots": 0}));
    assert!(json.get("lock").is_none() && json.get("note").is_none(), "{json}");
}

#[test]
fn colour_paints_the_tools_words_only_and_lines_fit_the_width() {
    let history = history(&story(), SUBJECT, None);
    let plain = table(&history, Look::PLAIN);
    let coloured = table(&history, Look { colour: true, width: None });
    assert_eq!(crate::text::without_colour(&coloured), plain, "colour changes no character");
    assert!(coloured.contains("\x1b[32mcompleted\x1b[0m"), "{coloured}");
    assert!(coloured.contains("\x1b[1m\x1b[31mfailed\x1b[0m"), "{coloured}");
    let wrapped = table(&history, Look { colour: true, width: Some(80) });
    for line in wrapped.lines() {
        assert!(crate::text::width(line) <= 80, "{line:?}");
    }
    let words = |t: &str| t.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(&crate::text::without_colour(&wrapped)), words(&plain), "wrapping moves spaces only");
}

#[test]
fn escape_sequences_in_an_edited_record_are_shown_not_obeyed() {
    let mut l = story();
    let run = &mut l.runs[1];
    run.command = "helm safe-upgrade bsr \x1b]0;owned\x07--yes".into();
    run.holder = "ana@box-1\r\x1b[2K pid 102".into();
    run.outcome = Some("\x1b[32mcompleted".into());
    run.message = Some("all fine\x1b[2J\x1b[H\nsecond line \u{202e}txt.exe".into());
    run.steps[0].detail = "deploy \u{9b}31m1.2.6".into();
    run.steps[0].outcome = "ok\x07".into();
    l.hops[1].message = Some("\x1b[8mhidden".into());
    l.hops[1].kind = "minor\r".into();
    l.snapshots[0].how = "command\x1b[1A".into();
    l.trimmed = Some("trimmed\x1b[5m".into());
    l.lock = Some(Lock {
        holder: "x\x1b[2J".into(),
        since: "now\x07".into(),
        command: "c\x1b".into(),
        plan: Some("p\r".into()),
        process: None,
    });
    let history = history(&l, SUBJECT, None);
    for look in [Look::PLAIN, Look { colour: true, width: Some(80) }] {
        let text = crate::text::without_colour(&table(&history, look));
        let obeyed: Vec<char> = text.chars().filter(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}').collect();
        assert!(obeyed.is_empty(), "{obeyed:?} reached the terminal:\n{text}");
        for shown in [
            "\\x1b]0;owned\\x07",
            "ana@box-1\\r\\x1b[2K",
            "\\x1b[32mcompleted",
            "all fine\\x1b[2J\\x1b[H",
            "\\u{202e}txt.exe",
            "\\x9b31m",
            "ok\\x07",
            "\\x1b[8mhidden",
            "command\\x1b[1A",
            "trimmed\\x1b[5m",
            "x\\x1b[2J",
        ] {
            assert!(text.contains(shown), "{shown:?} not shown as text:\n{text}");
        }
        // A message's second line stays indented under the run, not at the margin.
        assert!(text.contains("\n    second line"), "{text}");
    }
    // Only the tool's own words are painted: an outcome from the record is not.
    let coloured = table(&history, Look { colour: true, width: None });
    assert!(coloured.contains("  \\x1b[32mcompleted at 1.2.6"), "{coloured}");
    // The JSON document carries the text as recorded, escaped for the terminal.
    let printed = crate::text::json_for_terminal(&json(&history)).into_owned();
    assert!(!printed.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'), "{printed}");
    let back: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(back["runs"][1]["command"], "helm safe-upgrade bsr \x1b]0;owned\x07--yes");
}

/// A record written by a schema 2 build: runs without ids or steps, hops and snapshots
/// without their run, no procedure, no timings but the timestamps.
const SCHEMA_2: &str = r#"{
  "schema": 2, "release": "bsr", "namespace": "bsr", "newest_ever": "1.2.6", "chart": "demo/bsr", "policy": "bsr",
  "runs": [
    {"started_at": "2026-10-01T10:00:00Z", "ended_at": "2026-10-01T10:05:00Z", "holder": "ana@box-1 pid 7",
     "command": "helm safe-upgrade bsr --to ***", "direction": "upgrade", "from": "1.0.4", "to": "1.2.6",
     "outcome": "completed", "at": "1.2.6"},
    {"started_at": "2026-10-02T09:00:00Z", "ended_at": "2026-10-02T09:01:00Z", "holder": "ci@runner-3 pid 99",
     "command": "helm safe-rollback bsr --yes", "direction": "rollback", "from": "1.2.6", "to": "1.1.9",
     "outcome": "recovered", "at": "1.2.6", "message": "hop 1 failed"}
  ],
  "hops": [
    {"from": "0.9.0", "to": "1.0.4", "kind": "minor", "started_at": "2026-09-30T08:00:00Z",
     "ended_at": "2026-09-30T08:00:30Z", "outcome": "succeeded", "message": null},
    {"from": "1.0.4", "to": "1.1.9", "kind": "minor", "started_at": "2026-10-01T10:00:10Z",
     "ended_at": "2026-10-01T10:02:10Z", "outcome": "succeeded", "message": null},
    {"from": "1.1.9", "to": "1.2.6", "kind": "minor", "started_at": "2026-10-01T10:02:20Z",
     "ended_at": "2026-10-01T10:04:50Z", "outcome": "succeeded", "message": null},
    {"from": "1.2.6", "to": "1.1.9", "kind": "minor-downgrade", "started_at": "2026-10-02T09:00:05Z",
     "ended_at": "2026-10-02T09:00:45Z", "outcome": "failed", "message": "wait failed"}
  ],
  "snapshots": [{"version": "1.2.6", "taken_at": "2026-10-02T09:00:02Z", "how": "--snapshot-taken"}],
  "in_progress": null, "lock": null
}"#;

#[test]
fn a_schema_2_record_is_grouped_into_runs_by_time() {
    let ledger = Ledger::from_json(SCHEMA_2, "test", "").unwrap();
    let history = history(&ledger, SUBJECT, None);
    let hops = |run: usize| -> Vec<String> {
        history.runs[run]
            .hops
            .iter()
            .map(|h| format!("{} → {}", h.from.as_ref().unwrap(), h.to.as_ref().unwrap()))
            .collect()
    };
    assert_eq!(hops(0), ["1.0.4 → 1.1.9", "1.1.9 → 1.2.6"]);
    assert_eq!(hops(1), ["1.2.6 → 1.1.9"]);
    assert_eq!(history.runs[1].snapshots.len(), 1, "the snapshot was taken during the rollback");
    assert_eq!(history.runs[0].id, None, "no ids before schema 3");
    // The hop from before any run on record stays, apart.
    assert_eq!(history.without_run.hops.len(), 1);
    assert_eq!(history.without_run.hops[0].from, v("0.9.0"));
    let text = table(&history, Look::PLAIN);
    insta::assert_snapshot!("schema_2", text);
    assert!(text.contains("  hop 1: 1.0.4 → 1.1.9 (minor): succeeded in 2m 00s"), "{text}");
    assert!(text.contains("  hop 2: 1.1.9 → 1.2.6 (minor): succeeded in 2m 30s"), "{text}");
    assert!(text.contains("  hop 1: 1.2.6 → 1.1.9 (minor-downgrade): failed in 40s\n    wait failed\n"), "{text}");
    assert!(text.contains("2026-10-02T09:00:00Z  rollback 1.2.6 → 1.1.9  by ci@runner-3\n"), "{text}");
}

#[test]
fn a_failed_hops_error_is_said_once() {
    let mut l = story();
    l.runs[2].message = l.hops[2].message.clone();
    let text = table(&history(&l, SUBJECT, None), Look::PLAIN);
    assert!(text.contains("  recovered at 1.2.6 in 2m 12s: hop 1 failed (below)\n"), "{text}");
    assert_eq!(text.matches("upgrade bsr to 1.3.0 failed (exit 1)").count(), 1, "{text}");
}

#[test]
fn dropped_entries_are_said_at_the_end() {
    let mut l = story();
    l.dropped = Dropped { runs: 3, hops: 1, snapshots: 0 };
    l.trimmed =
        Some("older records were dropped to keep the ledger under 768 KiB (3 runs, 1 hops, 0 snapshots)".into());
    // The run of the first hop on record was dropped; its hop stays, apart.
    l.runs.remove(0);
    let history = history(&l, SUBJECT, None);
    let text = table(&history, Look::PLAIN);
    let tail: Vec<&str> = text.lines().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            "older records were dropped to keep the ledger under 768 KiB (3 runs, 1 hops, 0 snapshots)",
            "older entries were dropped to keep the ledger small: 3 runs, 1 hop, 0 snapshots",
        ],
        "{text}"
    );
    assert!(text.contains("without a run on record"), "{text}");
    assert!(text.contains("  2026-11-22T05:46:22Z  hop 1.0.4 → 1.1.9 (minor, rolling): succeeded in 2.3s"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&json(&history)).unwrap();
    assert_eq!(json["dropped"], serde_json::json!({"runs": 3, "hops": 1, "snapshots": 0}));
    assert_eq!(json["without_run"]["hops"][0]["from"], "1.0.4");
    assert!(json["trimmed"].as_str().unwrap().contains("768 KiB"));
}

#[test]
fn a_run_whose_hop_records_were_dropped_keeps_its_steps() {
    let mut l = story();
    l.hops.remove(0);
    let text = table(&history(&l, SUBJECT, None), Look::PLAIN);
    assert!(
        text.contains("  hop 1 (its record was dropped to keep the ledger small):\n    deploy 1.1.9: ok in 2.1s\n"),
        "{text}"
    );
}

#[test]
fn a_crashed_run_and_a_running_one() {
    let mut l = story();
    // Run 5 was killed mid-hop (kill -9): no end, its hop left running. Run 6 took over
    // its lock with --resume and is walking now.
    let r5 = run_record(5, "2026-11-23T08:00:00Z", None, "1.1.9", "1.3.0");
    l.hops.push(hop_record(Some(5), 1, "1.1.9", "1.2.6", "2026-11-23T08:00:10Z", None, HopOutcome::Running, None));
    let mut r6 = run_record(6, "2026-11-23T09:00:00Z", None, "1.1.9", "1.3.0");
    r6.command = "helm safe-upgrade bsr --resume".into();
    r6.steps = vec![step(Some(1), "deploy", "deploy 1.2.6", "ok", 2000)];
    l.hops.push(hop_record(Some(6), 1, "1.1.9", "1.2.6", "2026-11-23T09:00:05Z", None, HopOutcome::Running, None));
    l.lock = Some(Lock {
        holder: r6.holder.clone(),
        since: "2026-11-23T09:00:00Z".into(),
        command: r6.command.clone(),
        plan: Some("upgrade 1.1.9 → 1.3.0 (2 hops)".into()),
        process: None,
    });
    l.runs.extend([r5, r6]);
    let history = history(&l, SUBJECT, None);
    let text = table(&history, Look::PLAIN);
    insta::assert_snapshot!("crashed_and_running", &text[text.find("2026-11-23T08:00:00Z").unwrap()..]);
    assert!(
        text.contains("  crashed: no end on record (killed, or its machine lost, before it could record one)"),
        "{text}"
    );
    assert!(
        text.contains("  hop 1: 1.1.9 → 1.2.6 (minor, rolling): running: left so by a run that crashed\n"),
        "{text}"
    );
    assert!(text.contains("  running: holds the lock since 2026-11-23T09:00:00Z (ana@box-1 pid 106)"), "{text}");
    assert!(text.contains("  hop 1: 1.1.9 → 1.2.6 (minor, rolling): running\n    deploy 1.2.6: ok in 2.0s"), "{text}");
    assert!(!text.contains("locked by"), "the lock is shown with the run that holds it: {text}");
    let json: serde_json::Value = serde_json::from_str(&json(&history)).unwrap();
    assert_eq!(json["runs"][4]["outcome"], "crashed");
    assert_eq!(json["runs"][5]["outcome"], "running");
    assert_eq!(json["runs"][5]["lock_since"], "2026-11-23T09:00:00Z");
    assert!(json.get("lock").is_none(), "{json}");

    // Nobody took the lock over: the killed run still holds it, and is shown so.
    l.runs.pop();
    l.hops.pop();
    l.lock.as_mut().unwrap().holder = l.runs[4].holder.clone();
    let text = table(&super::history(&l, SUBJECT, None), Look::PLAIN);
    assert!(text.contains("  running: holds the lock since 2026-11-23T09:00:00Z (ana@box-1 pid 105); if that process is gone, --resume continues it"), "{text}");
}

#[test]
fn a_lock_or_a_plan_no_run_on_record_explains_is_said_at_the_end() {
    let mut l = story();
    l.lock = Some(Lock {
        holder: "bo@ci-7 pid 4".into(),
        since: "2026-11-24T00:00:00Z".into(),
        command: "helm safe-upgrade bsr --to ***".into(),
        plan: Some("upgrade 1.1.9 → 1.3.0 (2 hops)".into()),
        process: None,
    });
    let mut plan = crate::plan::plan_upgrade(
        &crate::policy::presets::for_chart("bsr"),
        &["1.1.9", "1.2.6", "1.3.0"].map(|s| crate::plan::Available::new(v(s))),
        &crate::plan::UpgradeRequest { current: v("1.1.9"), target: v("1.3.0"), fast_path: false, devel: false },
        &crate::plan::Context::default(),
    )
    .unwrap();
    plan.release = Some("bsr".into());
    l.in_progress =
        Some(InProgress { plan, next_hop: 1, step: None, started_at: "2026-11-24T00:00:01Z".into(), values: None });
    let text = table(&history(&l, SUBJECT, None), Look::PLAIN);
    assert!(text.contains("\nlocked by bo@ci-7 pid 4 since 2026-11-24T00:00:00Z (upgrade 1.1.9 → 1.3.0 (2 hops)): helm safe-upgrade bsr --to ***\n"), "{text}");
    assert!(text.contains("\na plan is left in progress: upgrade 1.1.9 → 1.3.0, hop 2 of 2 next (since 2026-11-24T00:00:01Z); --resume continues it\n"), "{text}");
}

#[test]
fn a_plan_in_progress_edited_to_an_absurd_hop_is_shown_not_a_panic() {
    let mut l = story();
    let plan = crate::plan::plan_upgrade(
        &crate::policy::presets::for_chart("bsr"),
        &["1.1.9", "1.2.6"].map(|s| crate::plan::Available::new(v(s))),
        &crate::plan::UpgradeRequest { current: v("1.1.9"), target: v("1.2.6"), fast_path: false, devel: false },
        &crate::plan::Context::default(),
    )
    .unwrap();
    l.in_progress =
        Some(InProgress { plan, next_hop: usize::MAX, step: Some(usize::MAX), started_at: "x".into(), values: None });
    let text = table(&history(&l, SUBJECT, None), Look::PLAIN);
    assert!(text.contains(&format!("hop {} of 1 next", usize::MAX)), "{text}");
}

#[test]
fn a_message_edited_to_a_megabyte_is_shown_as_long_as_a_run_writes_one() {
    let mut l = story();
    l.runs[1].message = Some("x".repeat(1 << 20));
    l.hops[1].message = Some("y".repeat(1 << 20));
    let shown = history(&l, SUBJECT, None);
    let text = table(&shown, Look::PLAIN);
    assert!(text.len() < 16 * 1024, "{} bytes", text.len());
    assert!(text.contains(&format!("{}… ({} more bytes)", "x".repeat(64), (1 << 20) - 2048)), "{text}");
    let printed = json(&shown);
    assert!(printed.len() < 16 * 1024, "{} bytes", printed.len());
    assert!(printed.contains(&format!("y… ({} more bytes)", (1 << 20) - 2048)), "{printed}");
    // A long message as a run writes it is shown as written.
    let written = crate::text::truncated(&"z".repeat(3000), crate::run::ledger::MAX_MESSAGE_BYTES).into_owned();
    l.hops[1].message = Some(written.clone());
    assert!(json(&history(&l, SUBJECT, None)).contains(&serde_json::to_string(&written).unwrap()));
}

#[test]
fn no_record_says_so() {
    let history = history(&Ledger::new("bsr", "bsr"), SUBJECT, None);
    assert_eq!(table(&history, Look::PLAIN), "no runs of helm-safe-upgrade are recorded for bsr in namespace bsr\n");
    let json: serde_json::Value = serde_json::from_str(&json(&history)).unwrap();
    assert_eq!(json["runs"], serde_json::json!([]));
    assert_eq!(json["release"], "bsr");
    assert_eq!(json["namespace"], "bsr");
}

#[test]
fn a_record_of_a_newer_version_is_said_in_the_json() {
    let note = "the ledger in x was written by a newer helm-safe-upgrade (schema 4; this one reads up to 3): shown as far as this version understands it";
    let json: serde_json::Value = serde_json::from_str(&json(&history(&story(), SUBJECT, Some(note)))).unwrap();
    assert_eq!(json["note"], note);
}

#[test]
fn way_back_steps_of_older_records_are_the_ones_after_the_failure() {
    // Written before steps carried their mark: what follows a failed step of the same
    // hop is its way back.
    let mut l = story();
    for step in &mut l.runs[2].steps {
        step.way_back = false;
    }
    let history = history(&l, SUBJECT, None);
    let hop = &history.runs[2].hops[0];
    assert_eq!(hop.steps.len(), 1);
    assert_eq!(hop.way_back.len(), 4);
}

#[test]
fn durations_read_at_a_glance() {
    assert_eq!(duration_text(0), "0.0s");
    assert_eq!(duration_text(2149), "2.1s");
    assert_eq!(duration_text(59_999), "59.9s");
    assert_eq!(duration_text(60_000), "1m 00s");
    assert_eq!(duration_text(125_400), "2m 05s");
    assert_eq!(duration_text(3_725_000), "1h 02m");
}
