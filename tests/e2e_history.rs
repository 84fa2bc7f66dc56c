//! `--history` end to end, on both helms: one release's story told by its ledger. An
//! upgrade of one hop (unattended, with a secret `--set`), an upgrade of two hops on a
//! terminal through helm, stopped at the pause, the same command again to continue, and
//! `helm safe-rollback` one minor; then `helm safe-upgrade bsr --history` and `helm
//! safe-rollback bsr --history -o json` through helm show each run, in order, by snapshot
//! (times, durations, pids, the user and the host masked), and never the secret.

#[path = "e2e/bed.rs"]
mod bed;
#[path = "e2e/pty.rs"]
mod pty;

use std::process::Output;

use bed::{Bed, VALUES, bed_policy};
use kube_standin::testing::HelmVersion;
use pty::Pty;
use serde_json::Value;

/// The pause menu's prompt; `j` then Enter picks "stop here" (dialoguer's Select).
const PAUSE_PROMPT: &str = "What next? (arrows and Enter)";
const STOP_HERE: &str = "j";
/// Passed with `--set` on the first run: it must not appear in the history.
const SECRET: &str = "hunter2";

/// `helm PLUGIN bsr --history ARGS` as an operator types it (helm sets HELM_NAMESPACE,
/// HELM_KUBECONTEXT and HELM_DEBUG for the plugin); its stdout, after checking it exits 0.
fn history(bed: &Bed, plugin: &str, args: &[&str]) -> String {
    let out: Output = bed.through_helm(plugin).args(["bsr", "--history"]).args(args).output().expect("run helm");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{}: helm {plugin} --history {args:?}\n{stdout}\n{stderr}", bed.version);
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{}: the secret leaked:\n{stdout}\n{stderr}",
        bed.version
    );
    stdout.into_owned()
}

/// `helm safe-rollback ARGS`, the plugin run as helm runs it.
fn rollback(bed: &Bed, args: &[&str]) -> Output {
    bed.tool().env("HELM_PLUGIN_NAME", "safe-rollback").args(args).output().expect("run helm-safe-upgrade")
}

fn story(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed_policy();

    // No run yet: said so, and nothing is created to say it.
    let none = history(&bed, "safe-upgrade", &[]);
    assert_eq!(
        none,
        format!("no runs of helm-safe-upgrade are recorded for bsr in namespace {}\n", bed.ns),
        "{version}"
    );
    let doc: Value = serde_json::from_str(&history(&bed, "safe-upgrade", &["-o", "json"])).unwrap();
    assert_eq!(doc["runs"], serde_json::json!([]), "{version}: {doc}");
    assert!(bed.get("v1", "configmaps", "helm-safe-upgrade.bsr").is_none(), "{version}: --history created the ledger");

    // 1. One hop, unattended, with a secret value.
    let secret = format!("postgres.password={SECRET}");
    let one = ["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes", "--set", &secret];
    bed.run_expect(&one, 0);

    // 2. Two hops on a terminal, through helm; at the pause, the history shows this run
    // as running (it holds the lock) and leaves the record alone; then "stop here".
    let two = ["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--policy", &policy];
    let mut pty = Pty::upgrade(&bed, &two);
    pty.expect("Start the 2 hops? [y/N]");
    pty.answer("y");
    pty.expect(PAUSE_PROMPT);
    let record = bed.get("v1", "configmaps", "helm-safe-upgrade.bsr").expect("the ledger");
    let during = history(&bed, "safe-upgrade", &[]);
    assert!(during.contains("  running: holds the lock since "), "{version}:\n{during}");
    // A run on a terminal stores the hop's end before it pauses: hop 1 is on record as
    // done while the operator decides.
    assert!(during.contains("  hop 1: 1.1.9 → 1.2.6 (minor, rolling): succeeded in "), "{version}:\n{during}");
    let after = bed.get("v1", "configmaps", "helm-safe-upgrade.bsr").expect("the ledger");
    assert_eq!(after["metadata"]["resourceVersion"], record["metadata"]["resourceVersion"], "{version}");
    pty.answer(STOP_HERE);
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: stopped at the pause: {rest}");

    // 3. The same command again goes on from 1.2.6.
    bed.run_expect(&[&two[..], &["--yes"]].concat(), 0);

    // 4. Back one minor, the policy's way.
    let out = rollback(&bed, &["bsr", "--chart", "demo/bsr", "--policy", &policy, "--yes", "--accept-data-loss"]);
    assert_eq!(out.status.code(), Some(0), "{version}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0", "bsr-1.2.6"], "{version}");

    // The history, as a table through `helm safe-upgrade` and as JSON through `helm
    // safe-rollback` (the same code).
    let table = history(&bed, "safe-upgrade", &[]);
    let doc: Value = serde_json::from_str(&history(&bed, "safe-rollback", &["-o", "json"])).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    let told: Vec<String> =
        runs.iter().map(|r| format!("{} {} → {}: {}", r["direction"], r["from"], r["to"], r["outcome"])).collect();
    assert_eq!(
        told,
        [
            r#""upgrade" "1.0.4" → "1.1.9": "completed""#,
            r#""upgrade" "1.1.9" → "1.3.0": "stopped""#,
            r#""upgrade" "1.2.6" → "1.3.0": "completed""#,
            r#""rollback" "1.3.0" → "1.2.6": "completed""#,
        ],
        "{version}: {doc}"
    );
    let who = runs[0]["who"].as_str().unwrap().to_string();
    insta::assert_snapshot!("history_table", mask_text(&table, &who, &bed.ns));
    insta::assert_json_snapshot!("history_json", mask_json(doc, &who));
    let ledger = bed.get("v1", "configmaps", "helm-safe-upgrade.bsr").unwrap().to_string();
    assert!(!ledger.contains(SECRET), "{version}: the ledger holds the secret: {ledger}");
}
both_helms!(upgrade_stop_continue_rollback, super::story);

/// The table with what differs between runs masked: timestamps, durations, pids, who ran
/// it, and the namespace (a fresh one per test on an external cluster).
fn mask_text(text: &str, who: &str, namespace: &str) -> String {
    let text = text.replace(who, "<user>@<host>").replace(&format!("namespace {namespace}"), "namespace <ns>");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if let Some(len) = timestamp_at(rest) {
            out.push_str("<time>");
            rest = &rest[len..];
        } else if let Some(len) = rest.strip_prefix(" in ").and_then(duration_at) {
            out.push_str(" in <d>");
            rest = &rest[" in ".len() + len..];
        } else if let Some(len) = rest
            .strip_prefix("pid ")
            .map(|r| r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len())
            .filter(|&n| n > 0)
        {
            out.push_str("pid <pid>");
            rest = &rest["pid ".len() + len..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The length of an RFC 3339 timestamp of the ledger (`2026-11-22T05:46:21Z`) at the start.
fn timestamp_at(text: &str) -> Option<usize> {
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    let head = text.get(..shape.len())?;
    let fits = head.chars().zip(shape.chars()).all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s });
    fits.then_some(shape.len())
}

/// The length of a duration as the history writes it (`4s`, `4.0s`, `2m 05s`, `1h 02m`) at the start.
fn duration_at(text: &str) -> Option<usize> {
    let digits = |t: &str| t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let first = digits(text);
    if first == 0 {
        return None;
    }
    let after = &text[first..];
    if after.starts_with('s') {
        return Some(first + 1);
    }
    if let Some(tenths) = after.strip_prefix('.') {
        let n = digits(tenths);
        return (n > 0 && tenths[n..].starts_with('s')).then_some(first + 1 + n + 1);
    }
    let unit = after.chars().next().filter(|c| *c == 'm' || *c == 'h')?;
    let second = after[1..].strip_prefix(' ')?;
    let n = digits(second);
    let next_unit = if unit == 'm' { 's' } else { 'm' };
    (n == 2 && second[n..].starts_with(next_unit)).then_some(first + 1 + 1 + n + 1)
}

/// The JSON with what differs between runs masked, by key.
fn mask_json(mut value: Value, who: &str) -> Value {
    fn walk(value: &mut Value, who: &str) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    let masked = match key.as_str() {
                        "started_at" | "ended_at" | "taken_at" | "since" | "lock_since" => "<time>",
                        "duration_ms" | "work_ms" | "downtime_ms" => "<ms>",
                        "holder" => "<user>@<host> pid <pid>",
                        "namespace" => "<ns>",
                        "location" => "<location>",
                        _ => {
                            walk(v, who);
                            continue;
                        }
                    };
                    if !v.is_null() {
                        *v = Value::from(masked);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, who)),
            Value::String(s) if s == who => *s = "<user>@<host>".into(),
            _ => {}
        }
    }
    walk(&mut value, who);
    value
}
