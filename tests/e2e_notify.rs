//! The notify hook on live runs, end to end: real helm 3.19.0 and 4.1.4 against the
//! Kubernetes API stand-in (or the cluster of HSU_E2E_KUBECONFIG), unattended and on a
//! terminal (the pause's "roll this hop back", a declined start). The hook is a shell
//! script the test writes, appending each document it reads on stdin to the file its
//! first argument names: one JSON line per call.

#[path = "e2e/bed.rs"]
mod bed;
#[path = "e2e/pty.rs"]
mod pty;

use std::path::{Path, PathBuf};

use bed::{Bed, VALUES, bed_policy};
use kube_standin::testing::HelmVersion;
use pty::Pty;
use serde_json::Value;

/// An executable `#!/bin/sh` script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The hook that records: `cat >> "$1"`.
fn recording_hook(dir: &Path) -> PathBuf {
    script(dir, "record-event", "cat >> \"$1\"")
}

/// Every document the hook received, in order.
/// The bed with bsr 1.0.4, and a hook that records each event in `events.jsonl` of a
/// folder of the test's (kept alive by the caller).
fn hooked_bed(version: HelmVersion) -> (Bed, tempfile::TempDir, PathBuf, PathBuf) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let dir = tempfile::tempdir().unwrap();
    let (hook, out) = (recording_hook(dir.path()), dir.path().join("events.jsonl"));
    (bed, dir, hook, out)
}

fn events(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "each document ends its line: {text:?}");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON line ({e}): {l}"))).collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event"].as_str().unwrap()).collect()
}

/// A copy of the bed's BSR policy with a `notify:` of its own.
fn policy_with_notify(dir: &Path, argv: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(bed_policy()).unwrap();
    let quoted: Vec<String> = argv.iter().map(|a| serde_json::to_string(a).unwrap()).collect();
    let path = dir.join("bsr-notify.yaml");
    std::fs::write(&path, format!("{text}\nnotify: [{}]\n", quoted.join(", "))).unwrap();
    path
}

fn every_event_is_sent_once_in_order(version: HelmVersion) {
    let (bed, _dir, hook, out) = hooked_bed(version);
    // Through helm, as an operator types it.
    let run = bed
        .through_helm("safe-upgrade")
        .args(["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"])
        .args(["--notify", hook.to_str().unwrap(), "--notify-arg", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{version}: {stderr}");
    assert!(!stderr.contains("warning"), "{version}: {stderr}");

    let got = events(&out);
    assert_eq!(names(&got), ["start", "hop-end", "hop-end", "completed"], "{version}: {got:?}");
    let holder = bed.ledger_record().unwrap()["runs"][0]["holder"].as_str().unwrap().to_string();
    for event in &got {
        assert_eq!(event["schema"], 1, "{version}: {event}");
        assert_eq!(event["release"], "bsr");
        assert_eq!(event["namespace"], bed.ns.as_str());
        assert_eq!(event["direction"], "upgrade");
        assert_eq!((event["from"].as_str(), event["to"].as_str()), (Some("1.0.4"), Some("1.2.6")));
        assert_eq!((event["hops"].as_u64(), event["downtime"].as_bool()), (Some(2), Some(false)));
        assert_eq!(event["policy"], "bsr");
        assert_eq!(event["holder"], holder.as_str(), "as the ledger's run record names it");
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
    }
    for (n, (event, hop_from, hop_to)) in [(&got[1], "1.0.4", "1.1.9"), (&got[2], "1.1.9", "1.2.6")].iter().enumerate()
    {
        assert_eq!(event["hop"], n + 1, "{version}: {event}");
        assert_eq!((event["hop_from"].as_str(), event["hop_to"].as_str()), (Some(*hop_from), Some(*hop_to)));
        assert_eq!((event["procedure"].as_str(), event["outcome"].as_str()), (Some("rolling"), Some("succeeded")));
        assert!(event["seconds"].as_f64().unwrap() >= 0.0, "{event}");
    }
    assert!(got[0].get("hop").is_none() && got[0].get("at").is_none(), "{version}: {}", got[0]);
    assert_eq!(got[3]["at"], "1.2.6", "{version}: {}", got[3]);
    assert!(got[3].get("message").is_none() && got[3].get("recovered").is_none(), "{}", got[3]);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);

    // --plan changes nothing and calls nothing.
    bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan", "--notify", hook.to_str().unwrap()], 0);
    assert_eq!(events(&out).len(), 4, "{version}: --plan called the hook");
    // A run with nothing to do is still a run (it takes the lock and is recorded): told
    // with no hops, so a hook can leave it out.
    let again = ["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--notify", hook.to_str().unwrap()];
    bed.run_expect(&[&again[..], &["--notify-arg", out.to_str().unwrap()]].concat(), 0);
    let got = events(&out);
    assert_eq!(names(&got[4..]), ["start", "completed"], "{version}: {got:?}");
    assert_eq!((got[4]["hops"].as_u64(), got[5]["at"].as_str()), (Some(0), Some("1.2.6")), "{version}");
}
both_helms!(every_event_once_in_order, super::every_event_is_sent_once_in_order);

fn a_failed_hop_is_told_redacted(version: HelmVersion) {
    let (bed, _dir, hook, out) = hooked_bed(version);
    let timeout = bed.fail_timeout("4s");
    let policy = bed_policy();
    bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.2.6",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--yes",
            "--timeout",
            &timeout,
            "--set",
            "postgres.password=hunter2",
            "--set",
            "image.tag=broken",
            "--set",
            "migration.imageTag=1.1.9",
            "--notify",
            hook.to_str().unwrap(),
            "--notify-arg",
            out.to_str().unwrap(),
        ],
        4,
    );
    let got = events(&out);
    assert_eq!(names(&got), ["start", "hop-end", "failed"], "{version}: {got:?}");
    let hop = &got[1];
    assert_eq!((hop["hop"].as_u64(), hop["outcome"].as_str()), (Some(1), Some("failed")), "{version}: {hop}");
    assert_eq!((hop["hop_from"].as_str(), hop["hop_to"].as_str()), (Some("1.0.4"), Some("1.1.9")));
    let end = &got[2];
    assert_eq!((end["recovered"].as_bool(), end["at"].as_str()), (Some(true), Some("1.0.4")), "{version}: {end}");
    let message = end["message"].as_str().unwrap();
    assert!(message.contains("'postgres.password=***'"), "{version}: the command line, redacted: {message}");
    let whole = std::fs::read_to_string(&out).unwrap();
    assert!(!whole.contains("hunter2") && !whole.contains("broken"), "{version}: a value reached the hook:\n{whole}");
    assert_eq!(bed.server_version_label(), "1.0.4", "{version}: brought back");
}
both_helms!(failed_hop_told_redacted, super::a_failed_hop_is_told_redacted);

fn a_hook_that_cannot_run_is_refused_before_anything_changes(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let before = bed.history();
    let args = ["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes"];
    let (_, stderr) =
        bed.run_expect(&[&args[..], &["--notify", "/nonexistent", "--notify-arg", "https://x/t0k3n"]].concat(), 2);
    assert!(
        stderr.contains("--notify /nonexistent cannot be run: no such file; nothing was changed"),
        "{version}: {stderr}"
    );
    assert!(stderr.contains("hint: name an executable file"), "{version}: {stderr}");
    assert!(!stderr.contains("t0k3n"), "{version}: {stderr}");
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("hook.sh");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let (_, stderr) = bed.run_expect(&[&args[..], &["--notify", not_executable.to_str().unwrap()]].concat(), 2);
    assert!(stderr.contains("is not executable") && stderr.contains("chmod +x"), "{version}: {stderr}");
    // The policy's own hook, missing from PATH.
    let policy = policy_with_notify(dir.path(), &["no-such-pager", "--room", "ops"]);
    let with_policy = [&args[..], &["--policy", policy.to_str().unwrap()]].concat();
    let (_, stderr) = bed.run_expect(&with_policy, 2);
    assert!(
        stderr.contains("the notify program no-such-pager of policy bsr-bed cannot be run: not found on PATH"),
        "{version}: {stderr}"
    );
    assert_eq!(bed.history(), before, "{version}: a refused run changed the release");
    assert!(bed.ledger_record().is_none(), "{version}: a refused run took the lock or recorded a run");

    // --notify replaces the policy's hook for this run.
    let (hook, out) = (recording_hook(dir.path()), dir.path().join("events.jsonl"));
    let replaced = ["--notify", hook.to_str().unwrap(), "--notify-arg", out.to_str().unwrap()];
    bed.run_expect(&[&with_policy[..], &replaced[..]].concat(), 0);
    assert_eq!(names(&events(&out)), ["start", "hop-end", "completed"], "{version}");
    // A policy's own hook that runs is called the same way.
    let from_policy = dir.path().join("from-policy.jsonl");
    let policy = policy_with_notify(dir.path(), &[hook.to_str().unwrap(), from_policy.to_str().unwrap()]);
    bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--policy", policy.to_str().unwrap()], 0);
    let got = events(&from_policy);
    assert_eq!(names(&got), ["start", "hop-end", "completed"], "{version}");
    assert_eq!((got[1]["hop_from"].as_str(), got[1]["hop_to"].as_str()), (Some("1.1.9"), Some("1.2.6")));
    assert_eq!(events(&out).len(), 3, "{version}: the earlier run's hook was not called again");
}
both_helms!(missing_hook_refused, super::a_hook_that_cannot_run_is_refused_before_anything_changes);

fn a_failing_hook_is_a_warning(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let dir = tempfile::tempdir().unwrap();
    let failing = script(
        dir.path(),
        "post-to-chat",
        "cat >/dev/null\necho 'chat: 503 Service Unavailable' >&2\necho 'retry later' >&2\nexit 1",
    );
    // Its argument a webhook URL whose path is its token.
    let url = "https://chat.example/hooks/T0/s3cr3t";
    let (stdout, stderr) = bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--yes",
            "--notify",
            failing.to_str().unwrap(),
            "--notify-arg",
            url,
        ],
        0,
    );
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning: notify hook")).collect();
    assert_eq!(warnings.len(), 3, "{version}: one per event (start, hop-end, completed):\n{stderr}");
    let named = failing.display().to_string();
    for (warning, event) in warnings.iter().zip(["start", "hop-end", "completed"]) {
        let expected = format!(
            "warning: notify hook {named} failed (exit 1): chat: 503 Service Unavailable (event {event}); the run goes on"
        );
        assert!(warning.ends_with(&expected), "{version}: {warning}");
    }
    assert!(!stderr.contains("retry later"), "{version}: only the first line of its stderr: {stderr}");
    assert!(stdout.contains("1.1.9"), "{version}: {stdout}");
    assert_eq!(bed.server_version_label(), "1.1.9", "{version}: the run went on");
    // The arguments are shown nowhere: not in a warning, not in the lock or the run record.
    let ledger = bed.ledger_record().unwrap().to_string();
    for text in [&stdout, &stderr, &ledger] {
        assert!(!text.contains("s3cr3t"), "{version}: the hook's argument leaked:\n{text}");
    }
    let command = bed.ledger_record().unwrap()["runs"][0]["command"].as_str().unwrap().to_string();
    assert!(command.contains("--notify *** --notify-arg ***"), "{version}: {command}");
}
both_helms!(failing_hook_warns, super::a_failing_hook_is_a_warning);

/// On a terminal: a declined start tells the hook nothing; a hop rolled back at the pause
/// ends twice (succeeded, then rolled-back) and the run ends stopped where it went back to.
fn a_hop_rolled_back_at_the_pause_ends_twice(version: HelmVersion) {
    let (bed, _dir, hook, out) = hooked_bed(version);
    let policy = bed_policy();
    let args = [
        "bsr",
        "--to",
        "1.2.6",
        "--chart",
        "demo/bsr",
        "--policy",
        &policy,
        "--notify",
        hook.to_str().unwrap(),
        "--notify-arg",
        out.to_str().unwrap(),
    ];
    let mut declined = Pty::upgrade(&bed, &args);
    declined.expect("Start the 2 hops? [y/N]");
    declined.answer("n");
    assert_eq!(declined.finish().1, 5, "{version}");
    assert!(events(&out).is_empty(), "{version}: a declined run told the hook: {:?}", events(&out));

    let mut pty = Pty::upgrade(&bed, &args);
    pty.expect("Start the 2 hops? [y/N]");
    pty.answer("y");
    pty.expect("What next? (arrows and Enter)");
    assert_eq!(names(&events(&out)), ["start", "hop-end"], "{version}: hop 1's end is told before the pause");
    pty.answer("jj"); // roll this hop back
    let (rest, code) = pty.finish();
    assert_eq!(code, 5, "{version}: {rest}");
    let got = events(&out);
    assert_eq!(names(&got), ["start", "hop-end", "hop-end", "stopped"], "{version}: {got:?}");
    for (event, outcome) in [(&got[1], "succeeded"), (&got[2], "rolled-back")] {
        assert_eq!((event["hop"].as_u64(), event["outcome"].as_str()), (Some(1), Some(outcome)), "{version}: {event}");
        assert_eq!((event["hop_from"].as_str(), event["hop_to"].as_str()), (Some("1.0.4"), Some("1.1.9")));
    }
    assert_eq!(got[3]["at"], "1.0.4", "{version}: {}", got[3]);
    assert_eq!(got[3]["message"], "hop 1 rolled back by the operator", "{version}: {}", got[3]);
    assert_eq!(bed.server_version_label(), "1.0.4", "{version}");
}
both_helms!(rolled_back_at_the_pause, super::a_hop_rolled_back_at_the_pause_ends_twice);
