//! The record, the lock and the file store, without a cluster.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::lock::Claim;
use super::*;
use crate::plan::{Direction, Plan, Strategy};
use crate::run::holder::{Me, Process, hostname};

fn v(s: &str) -> ChartVersion {
    ChartVersion::parse(s).unwrap()
}

fn store(dir: &Path) -> Arc<FileStore> {
    Arc::new(FileStore::new(dir, Some("kind-prod"), "bsr", "registry"))
}

/// A run of this host whose process is gone.
fn dead(user: &str) -> Me {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    Me { user: user.into(), process: Process { host: hostname(), pid, started: None } }
}

/// A run on another machine.
fn elsewhere(user: &str, pid: u32) -> Me {
    Me { user: user.into(), process: Process { host: "ci-runner-7".into(), pid, started: None } }
}

fn claim(me: Me, command: &str) -> Claim {
    Claim { me, command: command.into(), plan: "upgrade 1.0.0 → 1.3.0 (3 hops)".into() }
}

fn plan(to: &str) -> Plan {
    Plan {
        schema: crate::plan::document::SCHEMA,
        direction: Direction::Upgrade,
        policy: "bsr".into(),
        sources: None,
        release: Some("registry".into()),
        namespace: Some("bsr".into()),
        from: v("1.0.0"),
        to: v(to),
        strategy: Strategy::Sequential,
        downtime: false,
        preflight: vec![],
        hops: vec![],
        alternatives: vec![],
        warnings: vec![],
        not_rendered: None,
        estimate: None,
        made_from: None,
        digest: None,
    }
}

fn hop(from: ChartVersion, to: ChartVersion) -> crate::plan::Hop {
    crate::plan::Hop {
        from,
        to,
        kind: crate::plan::HopKind::Minor,
        downtime: false,
        procedure: "rolling".into(),
        release_notes: None,
        steps: vec![],
        values: vec![],
        check: None,
        estimate: None,
        app: None,
    }
}

fn full_ledger() -> Ledger {
    let mut l = Ledger::new("registry", "bsr");
    l.chart = Some("oci://example.test/charts/bsr".into());
    l.policy = Some("bsr".into());
    l.note_deployed(&v("v1.1.2"));
    l.record_hop_start(&hop(v("1.1.2"), v("1.2.6")), 0);
    l.record_hop_end(HopOutcome::RolledBack, Some("verify failed".into()), false).unwrap();
    l.record_snapshot(&v("1.1.2"), "--snapshot-taken");
    l.set_in_progress(plan("1.2.6"), 1, Some(2), None);
    l.record_run_start(RunRecord {
        id: 0,
        started_at: now(),
        ended_at: None,
        holder: "ana@box pid 7".into(),
        command: "helm safe-upgrade registry --to *** --set ***".into(),
        direction: "upgrade".into(),
        from: v("1.1.2"),
        to: v("1.2.6"),
        outcome: None,
        at: None,
        message: None,
        steps: vec![],
    });
    l.lock = Some(Lock {
        holder: "ana@box pid 7".into(),
        since: now(),
        command: "helm safe-upgrade registry --to *** --set ***".into(),
        plan: Some("upgrade 1.1.2 → 1.2.6 (1 hop)".into()),
        process: Some(Process { host: "box".into(), pid: 7, started: Some("b/1".into()) }),
    });
    l
}

#[test]
fn json_round_trip_keeps_everything_including_version_spelling() {
    let ledger = full_ledger();
    let text = ledger.to_json().unwrap();
    let back = Ledger::from_json(&text, "test", "").unwrap();
    assert_eq!(back, ledger);
    assert_eq!(back.newest_ever().unwrap().original(), "v1.1.2");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema"], SCHEMA);
    assert_eq!(value["hops"][0]["outcome"], "rolled-back");
    assert_eq!(value["in_progress"]["step"], 2);
}

#[test]
fn a_newer_schema_is_refused_not_rewritten() {
    let mut value = serde_json::to_value(Ledger::new("r", "n")).unwrap();
    value["schema"] = (SCHEMA + 1).into();
    let err = Ledger::from_json(&value.to_string(), "somewhere", "").unwrap_err();
    assert!(matches!(err, LedgerError::NewerSchema { found, .. } if found == u64::from(SCHEMA) + 1), "{err}");
    assert!(err.to_string().contains("upgrade helm-safe-upgrade"), "{err}");
    let err = Ledger::from_json("{\"release\": \"r\"}", "somewhere", " in x").unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("look at it in x"), "{err}");
}

#[test]
fn newest_ever_only_rises() {
    let mut l = Ledger::new("r", "n");
    assert!(l.note_deployed(&v("1.2.0")));
    assert!(!l.note_deployed(&v("1.1.9")));
    assert!(!l.note_deployed(&v("v1.2.0")), "same version, other spelling");
    assert!(l.note_deployed(&v("1.3.0-rc.1")));
    assert_eq!(l.newest_ever(), Some(&v("1.3.0-rc.1")));
}

#[test]
fn hops_and_snapshots_keep_the_last_hundred() {
    let mut l = Ledger::new("r", "n");
    for i in 0..130u64 {
        l.record_hop_start(&hop(v(&format!("1.{i}.0")), v(&format!("1.{}.0", i + 1))), 0);
        l.record_hop_end(HopOutcome::Succeeded, None, false).unwrap();
        l.record_snapshot(&v(&format!("1.{i}.0")), "command");
    }
    assert_eq!(l.hops.len(), MAX_HOPS);
    assert_eq!(l.hops[0].from, v("1.30.0"), "the oldest are dropped");
    assert_eq!(l.hops.last().unwrap().to, v("1.130.0"));
    assert_eq!(l.snapshots.len(), MAX_SNAPSHOTS);
    assert_eq!(l.latest_snapshot().unwrap().version, v("1.129.0"));
}

#[test]
fn hop_end_closes_the_running_hop_only() {
    let mut l = Ledger::new("r", "n");
    assert!(matches!(l.record_hop_end(HopOutcome::Failed, None, false), Err(LedgerError::NoHopRunning)));
    l.record_hop_start(&hop(v("1.0.0"), v("1.1.0")), 0);
    assert_eq!(l.hops[0].outcome, HopOutcome::Running);
    assert!(l.hops[0].ended_at.is_none());
    l.record_hop_end(HopOutcome::Stopped, Some("operator".into()), false).unwrap();
    assert_eq!(l.hops[0].outcome, HopOutcome::Stopped);
    assert!(l.hops[0].ended_at.is_some());
    assert!(matches!(l.record_hop_end(HopOutcome::Failed, None, false), Err(LedgerError::NoHopRunning)));
}

#[test]
fn a_schema_1_record_is_read_and_its_values_path_dropped() {
    let old = serde_json::json!({
        "schema": 1, "release": "registry", "namespace": "bsr", "newest_ever": "1.2.6", "chart": "demo/bsr",
        "policy": "bsr", "hops": [], "snapshots": [], "lock": null,
        "in_progress": {"plan": serde_json::to_value(plan("1.3.0")).unwrap(), "next_hop": 1, "step": null,
                        "started_at": "2026-01-01T00:00:00Z"},
    });
    let mut with_path = old.clone();
    with_path["in_progress"]["plan"]["values_backup"] = "/etc/shadow".into();
    let read = Ledger::from_json(&with_path.to_string(), "x", "").unwrap();
    assert_eq!(read.schema, SCHEMA);
    let in_progress = read.in_progress.unwrap();
    assert_eq!(in_progress.plan.to, v("1.3.0"));
    assert!(in_progress.values.is_none(), "a path from the record is never trusted");
}

#[test]
fn messages_are_bounded_and_the_record_stays_small() {
    let mut l = full_ledger();
    l.record_hop_start(&hop(v("1.2.6"), v("1.3.0")), 0);
    l.record_hop_end(HopOutcome::Failed, Some("x".repeat(100_000)), false).unwrap();
    assert!(l.hops.last().unwrap().message.as_ref().unwrap().len() < MAX_MESSAGE_BYTES + 64);
    for i in 0..MAX_RUNS {
        l.record_run_start(RunRecord {
            id: 0,
            started_at: now(),
            ended_at: None,
            holder: "h".into(),
            command: "c".repeat(5000),
            direction: "upgrade".into(),
            from: v("1.0.0"),
            to: v("1.1.0"),
            outcome: None,
            at: None,
            message: None,
            steps: vec![],
        });
        l.record_run_end("completed", Some(v("1.1.0")), Some(format!("run {i} {}", "m".repeat(3000))));
    }
    l.policy_record = Some(PolicyRecord {
        name: "big".into(),
        origin: crate::policy::Origin::File { path: "/p.yaml".into() },
        digest: "sha256:00".into(),
        text: Some("# ".repeat(MAX_POLICY_TEXT_BYTES / 2)),
    });
    let text = l.to_json().unwrap();
    assert!(text.len() <= MAX_RECORD_BYTES, "{}", text.len());
    let back = Ledger::from_json(&text, "x", "").unwrap();
    assert!(back.trimmed.as_ref().unwrap().contains("dropped"), "{:?}", back.trimmed);
    assert_eq!(back.runs.last().unwrap().message.as_deref().map(|m| m.starts_with("run 99")), Some(true));
    assert_eq!(back.in_progress, l.in_progress, "the plan in progress is never dropped");
}

#[test]
fn in_progress_keeps_the_start_of_the_same_plan() {
    let mut l = Ledger::new("r", "n");
    l.set_in_progress(plan("1.3.0"), 0, None, None);
    let started = "2000-01-01T00:00:00Z".to_string();
    l.in_progress.as_mut().unwrap().started_at = started.clone();
    l.set_in_progress(plan("1.3.0"), 1, Some(0), None);
    assert_eq!(l.in_progress.as_ref().unwrap().started_at, started);
    assert_eq!(l.in_progress.as_ref().unwrap().next_hop, 1);
    l.set_in_progress(plan("1.4.0"), 0, None, None);
    assert_ne!(l.in_progress.as_ref().unwrap().started_at, started, "another plan starts anew");
    l.clear_in_progress();
    assert!(l.in_progress.is_none());
}

#[test]
fn timestamps_are_rfc3339_utc_seconds() {
    let t = now();
    assert_eq!(t.len(), "2025-01-02T03:04:05Z".len(), "{t}");
    assert!(t.ends_with('Z'));
    humantime::parse_rfc3339(&t).unwrap();
}

#[test]
fn path_components_cannot_climb_or_collide() {
    assert_eq!(path_component("kind-prod"), "kind-prod");
    assert_eq!(path_component(".."), "%2E.");
    assert_eq!(path_component("arn:aws:eks:x:1:cluster/prod"), "arn%3Aaws%3Aeks%3Ax%3A1%3Acluster%2Fprod");
    assert_ne!(path_component("a/b"), path_component("a_b"));
    assert_ne!(path_component("a/b"), path_component("a%2Fb"));
    assert_eq!(path_component(""), "%");
}

#[test]
fn file_store_path_follows_context_namespace_release() {
    let s = FileStore::new(Path::new("/state/helm-safe-upgrade"), None, "bsr", "registry");
    assert_eq!(s.path(), Path::new("/state/helm-safe-upgrade/default/bsr/registry.json"));
    let s = FileStore::new(Path::new("/s"), Some("ctx/1"), "ns", "r");
    assert_eq!(s.path(), Path::new("/s/ctx%2F1/ns/r.json"));
}

#[test]
fn file_store_creates_loads_and_updates_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("helm-safe-upgrade");
    let s = store(&root);
    assert!(s.load().unwrap().is_none());
    let ledger = full_ledger();
    let rev = s.write(&ledger, None).unwrap();
    assert_eq!(rev, Revision("1".into()));
    let loaded = s.load().unwrap().unwrap();
    assert_eq!(loaded.ledger, ledger);
    assert_eq!(loaded.revision, rev);
    let rev2 = s.write(&Ledger::new("registry", "bsr"), Some(&rev)).unwrap();
    assert_eq!(rev2, Revision("2".into()));
    assert!(s.load().unwrap().unwrap().ledger.hops.is_empty());

    assert_eq!(std::fs::metadata(s.path()).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(s.lock_path()).unwrap().mode() & 0o777, 0o600);
    for d in [root.clone(), root.join("kind-prod"), root.join("kind-prod/bsr")] {
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700, "{}", d.display());
    }
    // Nothing but the record and its lock file is left behind.
    let mut names: Vec<_> = std::fs::read_dir(root.join("kind-prod/bsr"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["registry.json", "registry.json.lock"]);
}

#[test]
fn file_store_tightens_directories_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("helm-safe-upgrade");
    std::fs::create_dir_all(root.join("kind-prod/bsr")).unwrap();
    std::fs::set_permissions(root.join("kind-prod"), std::fs::Permissions::from_mode(0o755)).unwrap();
    store(&root).write(&Ledger::new("registry", "bsr"), None).unwrap();
    assert_eq!(std::fs::metadata(root.join("kind-prod")).unwrap().mode() & 0o777, 0o700);
}

#[test]
fn file_store_detects_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (store(dir.path()), store(dir.path()));
    let rev = a.write(&Ledger::new("registry", "bsr"), None).unwrap();
    assert!(
        matches!(b.write(&Ledger::new("registry", "bsr"), None), Err(LedgerError::Conflict { .. })),
        "create over an existing record"
    );
    let read_by_b = b.load().unwrap().unwrap();
    a.write(&Ledger::new("registry", "bsr"), Some(&rev)).unwrap();
    let err = b.write(&read_by_b.ledger, Some(&read_by_b.revision)).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
    assert_eq!(s_rev(&a), "2", "the losing write changed nothing");
}

fn s_rev(s: &FileStore) -> String {
    s.load().unwrap().unwrap().revision.0
}

#[test]
fn file_store_replaces_the_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let first = full_ledger();
    let rev = s.write(&first, None).unwrap();
    // A reader that opened the file before the write still reads the old record in
    // full: the new one arrived by rename, not by rewriting the file in place.
    let mut reader = File::open(s.path()).unwrap();
    let inode = std::fs::metadata(s.path()).unwrap().ino();
    s.write(&Ledger::new("registry", "bsr"), Some(&rev)).unwrap();
    let mut old = String::new();
    reader.read_to_string(&mut old).unwrap();
    assert_eq!(Ledger::from_json(&old, "old", "").unwrap(), first);
    assert_ne!(std::fs::metadata(s.path()).unwrap().ino(), inode);
}

#[test]
fn file_store_serialises_concurrent_writers() {
    // Many threads, each with its own handle, race read-then-write from one revision:
    // exactly one wins each round, and the counter counts every win.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    store(&root).write(&Ledger::new("registry", "bsr"), None).unwrap();
    let wins: usize = (0..8)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let s = store(&root);
                let mut won = 0;
                for _ in 0..20 {
                    let Stored { mut ledger, revision } = s.load().unwrap().unwrap();
                    ledger.policy = Some(format!("writer {i}"));
                    match s.write(&ledger, Some(&revision)) {
                        Ok(_) => won += 1,
                        Err(LedgerError::Conflict { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                won
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .sum();
    assert!(wins >= 1);
    assert_eq!(s_rev(&store(&root)), (wins + 1).to_string());
}

#[test]
fn file_store_flock_excludes_another_holder() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.write(&Ledger::new("registry", "bsr"), None).unwrap();
    let guard = s.exclusive().unwrap();
    let other = File::options().write(true).open(s.lock_path()).unwrap();
    assert!(other.try_lock().is_err(), "the .lock sibling is held during a write");
    drop(guard);
    assert!(other.try_lock().is_ok());
}

#[test]
fn acquire_locks_and_a_second_acquire_names_the_holder_and_the_shape_of_its_command() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    let ana = elsewhere("ana", 7);
    let mut held =
        Held::acquire(s.clone(), &claim(ana, "helm safe-upgrade registry --to *** --set ***"), &Takeover::No).unwrap();
    held.ledger_mut().set_in_progress(plan("1.3.0"), 0, None, None);
    held.save().unwrap();
    let err =
        Held::acquire(s.clone(), &claim(elsewhere("bo", 9), "helm safe-rollback registry"), &Takeover::No).unwrap_err();
    let LedgerError::Locked(locked) = &err else { panic!("{err}") };
    let (holder, command) = (&locked.holder, &locked.command);
    assert_eq!(holder, "ana@ci-runner-7 pid 7");
    assert_eq!(command, "helm safe-upgrade registry --to *** --set ***");
    let text = err.to_string();
    assert!(text.contains("locked by ana@ci-runner-7 pid 7 since 20"), "{text}");
    assert!(text.contains("(upgrade 1.0.0 → 1.3.0 (3 hops))"), "{text}");
    assert!(text.contains("--force-unlock='ana@ci-runner-7 pid 7'") && text.contains("--resume"), "{text}");

    let released = held.release_lock().unwrap();
    assert!(released.lock.is_none());
    let again =
        Held::acquire(s.clone(), &claim(elsewhere("bo", 9), "helm safe-rollback registry"), &Takeover::No).unwrap();
    assert_eq!(again.ledger().lock.as_ref().unwrap().holder, "bo@ci-runner-7 pid 9");
    assert_eq!(again.ledger().in_progress.as_ref().unwrap().plan.to, v("1.3.0"), "the journal survives the lock");
}

#[test]
fn a_live_holder_of_this_host_is_never_overridden() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    let me = Me::current();
    let holder = me.holder();
    let _held = Held::acquire(s.clone(), &claim(me.clone(), "first"), &Takeover::No).unwrap();
    for takeover in [Takeover::No, Takeover::IfGone, Takeover::Named(holder.clone())] {
        let err = Held::acquire(s.clone(), &claim(elsewhere("bo", 1), "second"), &takeover).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("still alive on this machine"), "{takeover:?}: {text}");
    }
    assert_eq!(s.load().unwrap().unwrap().ledger.lock.unwrap().holder, holder);
}

#[test]
fn a_dead_holder_of_this_host_is_taken_over_with_force_unlock_only() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    let gone = dead("ana");
    let mut held = Held::acquire(s.clone(), &claim(gone.clone(), "first"), &Takeover::No).unwrap();
    held.ledger_mut().note_deployed(&v("1.2.6"));
    held.save().unwrap();
    drop(held);
    let err = Held::acquire(s.clone(), &claim(Me::current(), "second"), &Takeover::No).unwrap_err();
    assert!(err.to_string().contains("that run is gone"), "{err}");
    let forced = Held::acquire(s.clone(), &claim(Me::current(), "second"), &Takeover::IfGone).unwrap();
    assert_eq!(forced.ledger().lock.as_ref().unwrap().command, "second");
    assert_eq!(forced.ledger().newest_ever(), Some(&v("1.2.6")));
}

#[test]
fn a_holder_elsewhere_must_be_named_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    drop(Held::acquire(s.clone(), &claim(elsewhere("ana", 7), "first"), &Takeover::No).unwrap());
    let err = Held::acquire(s.clone(), &claim(Me::current(), "x"), &Takeover::IfGone).unwrap_err();
    assert!(err.to_string().contains("runs on another machine"), "{err}");
    let err = Held::acquire(s.clone(), &claim(Me::current(), "x"), &Takeover::Named("ana@ci-runner-7 pid 8".into()))
        .unwrap_err();
    assert!(err.to_string().contains("name the holder exactly"), "{err}");
    let held =
        Held::acquire(s.clone(), &claim(Me::current(), "x"), &Takeover::Named("ana@ci-runner-7 pid 7".into())).unwrap();
    assert_eq!(held.ledger().lock.as_ref().unwrap().holder, Me::current().holder());
}

#[test]
fn a_holder_with_control_characters_is_named_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    drop(Held::acquire(s.clone(), &claim(elsewhere("ana\u{1b}[2J\n", 7), "first"), &Takeover::No).unwrap());
    let err = Held::acquire(s.clone(), &claim(Me::current(), "x"), &Takeover::No).unwrap_err().to_string();
    // The hint's flag, as an operator copies it off the terminal: no control character.
    let flag = err.split("--force-unlock=").nth(1).expect("the flag").split_whitespace().take(3).collect::<Vec<_>>();
    let printed = flag.join(" ").trim_matches('\'').to_string();
    assert!(!printed.chars().any(char::is_control), "{printed:?}");
    assert_eq!(printed, crate::text::one_line("ana\u{1b}[2J\n@ci-runner-7 pid 7"));
    // Naming another holder is refused with the holder as the hint printed it.
    let other = Held::acquire(s.clone(), &claim(Me::current(), "x"), &Takeover::Named("bo@x pid 1".into()));
    let other = other.unwrap_err().to_string();
    assert!(other.contains(&format!("held by '{printed}': name the holder exactly")), "{other}");
    let held = Held::acquire(s.clone(), &claim(Me::current(), "x"), &Takeover::Named(printed)).unwrap();
    assert_eq!(held.ledger().lock.as_ref().unwrap().holder, Me::current().holder());
}

#[test]
fn a_run_whose_lock_was_taken_cannot_save() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    let mut stale = Held::acquire(s.clone(), &claim(elsewhere("ana", 7), "first"), &Takeover::No).unwrap();
    let _new =
        Held::acquire(s.clone(), &claim(Me::current(), "second"), &Takeover::Named("ana@ci-runner-7 pid 7".into()))
            .unwrap();
    stale.ledger_mut().record_hop_start(&hop(v("1.0.0"), v("1.1.0")), 0);
    let err = stale.save().unwrap_err();
    assert!(matches!(err, LedgerError::LockLost { .. }), "{err}");
    assert!(err.to_string().contains("no longer holds the lock"), "{err}");
    assert!(matches!(stale.release_lock(), Err(LedgerError::LockLost { .. })));
    assert_eq!(s.load().unwrap().unwrap().ledger.lock.unwrap().command, "second", "the stale run changed nothing");
}

#[test]
fn a_deleted_record_means_the_lock_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut held = Held::acquire(s.clone(), &claim(Me::current(), "first"), &Takeover::No).unwrap();
    std::fs::remove_file(s.path()).unwrap();
    let err = held.save().unwrap_err();
    assert!(matches!(err, LedgerError::LockLost { .. }), "{err}");
}

/// A store whose next write fails after (or before) it was applied, like a request
/// that timed out on the way back (or on the way there).
#[derive(Debug)]
struct Flaky {
    inner: Arc<FileStore>,
    fail_after_apply: std::sync::Mutex<Option<bool>>,
}

impl LedgerStore for Flaky {
    fn release(&self) -> &str {
        self.inner.release()
    }
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn load(&self) -> Result<Option<Stored>, LedgerError> {
        self.inner.load()
    }
    fn load_for_showing(&self) -> Result<Option<ForShowing>, LedgerError> {
        self.inner.load_for_showing()
    }
    fn write(&self, ledger: &Ledger, expected: Option<&Revision>) -> Result<Revision, LedgerError> {
        let timeout = || LedgerError::Io {
            action: "write".into(),
            path: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
            hint: String::new(),
        };
        match self.fail_after_apply.lock().unwrap().take() {
            Some(true) => {
                self.inner.write(ledger, expected)?;
                Err(timeout())
            }
            Some(false) => Err(timeout()),
            None => self.inner.write(ledger, expected),
        }
    }
}

#[test]
fn a_write_that_timed_out_is_checked_not_assumed() {
    for applied in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let flaky = Arc::new(Flaky { inner: store(dir.path()), fail_after_apply: Default::default() });
        let mut held = Held::acquire(flaky.clone(), &claim(Me::current(), "first"), &Takeover::No).unwrap();
        held.ledger_mut().record_hop_start(&hop(v("1.0.0"), v("1.1.0")), 0);
        *flaky.fail_after_apply.lock().unwrap() = Some(applied);
        held.save().unwrap();
        assert_eq!(flaky.load().unwrap().unwrap().ledger, *held.ledger(), "applied: {applied}");
        // And the lock is still ours: the next write goes over the right revision.
        held.ledger_mut().record_hop_end(HopOutcome::Succeeded, None, false).unwrap();
        held.save().unwrap();
    }
}

#[test]
fn racing_acquirers_one_wins_the_others_see_it_locked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let barrier = Arc::new(std::sync::Barrier::new(6));
    let results: Vec<_> = (0..6)
        .map(|i| {
            let (root, barrier) = (root.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Held::acquire(store(&root), &claim(elsewhere(&format!("run{i}"), i), "cmd"), &Takeover::No)
                    .map(|h| h.ledger().lock.clone().unwrap().holder)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            let LedgerError::Locked(locked) = e else { panic!("{e}") };
            let holder = &locked.holder;
            assert_eq!(holder, winners[0]);
        }
    }
}

/// A client of a cluster that cannot be reached (nothing listens on port 1).
fn unreachable_client() -> (tempfile::TempDir, crate::kube::KubeClient) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let env = crate::kube::Environment::from_pairs([("KUBECONFIG", kubeconfig.to_str().unwrap())]);
    let client = crate::kube::KubeClient::connect(&env, None, "bsr").unwrap().with_timeout(Duration::from_secs(2));
    (dir, client)
}

#[test]
fn an_unreachable_cluster_is_an_error_unless_the_ledger_is_local_by_choice() {
    // A cluster that cannot be reached must not quietly split the lock in two.
    let (dir, client) = unreachable_client();
    let err = open_store_at(&client, "registry", Some("prod"), false, Some(dir.path())).unwrap_err();
    assert!(matches!(err, LedgerError::Kube(_)), "{err}");
    assert!(err.to_string().contains("read the ledger of registry"), "{err}");
    let opened = open_store_at(&client, "registry", Some("prod"), true, Some(dir.path())).unwrap();
    assert_eq!(opened.store.location(), dir.path().join("prod/bsr/registry.json").display().to_string());
    let warning = opened.warning.unwrap();
    assert!(warning.contains("--local-ledger") && warning.contains("Only this machine sees it"), "{warning}");
}

#[test]
fn a_newer_schema_is_read_for_showing_as_far_as_understood() {
    let mut value = serde_json::to_value(full_ledger()).unwrap();
    value["schema"] = (SCHEMA + 1).into();
    value["hops"][0]["future_field"] = "kept out".into();
    value["runs"][0]["from"] = serde_json::json!({"not": "a version"});
    value["something_new"] = serde_json::json!([1, 2]);
    let (read, note) = Ledger::from_json_for_reading(&value.to_string(), "cm/x", "").unwrap();
    let note = note.expect("says it was written by a newer version");
    assert!(note.contains("newer helm-safe-upgrade") && note.contains("1 entries it cannot read"), "{note}");
    assert_eq!(read.hops.len(), 1, "an unknown field does not hide the hop");
    assert!(read.runs.is_empty(), "the run it cannot read is left out");
    assert_eq!(read.release, "registry");
    let (_, none) = Ledger::from_json_for_reading(&full_ledger().to_json().unwrap(), "cm/x", "").unwrap();
    assert!(none.is_none());
}

#[test]
fn a_hop_records_its_work_without_the_operators_time_and_its_downtime_from_the_first_deploy() {
    let mut l = Ledger::new("r", "n");
    l.record_run_start(RunRecord {
        id: 0,
        started_at: now(),
        ended_at: None,
        holder: "h".into(),
        command: "c".into(),
        direction: "upgrade".into(),
        from: v("1.0.0"),
        to: v("1.2.0"),
        outcome: None,
        at: None,
        message: None,
        steps: vec![],
    });
    let step = |hop: Option<usize>, action: &str, ms: u64, waited: bool| StepRecord {
        hop,
        action: action.into(),
        detail: action.into(),
        outcome: "ok".into(),
        duration_ms: ms,
        waited_for_operator: waited,
        way_back: false,
    };
    l.record_step(step(None, "snapshot", 50_000, true));
    l.record_hop_start(&hop(v("1.0.0"), v("1.2.0")), 0);
    for s in [
        step(Some(1), "confirm", 600_000, true),
        step(Some(1), "snapshot", 30_000, false),
        step(Some(1), "deploy", 20_000, false),
        step(Some(1), "verify", 5_000, false),
    ] {
        l.record_step(s);
    }
    l.record_hop_end(HopOutcome::Succeeded, None, true).unwrap();
    let recorded = &l.hops[0];
    assert_eq!((recorded.run, recorded.index), (Some(1), Some(1)));
    assert_eq!(recorded.procedure.as_deref(), Some("rolling"));
    assert_eq!(recorded.work_ms, Some(55_000), "the confirmation's ten minutes are the operator's");
    assert_eq!(recorded.downtime_ms, Some(25_000), "from the first deploy");
    assert_eq!(l.runs[0].steps.len(), 5);
    l.record_run_end("completed", Some(v("1.2.0")), None);
    l.record_run_start(l.runs[0].clone());
    assert_eq!(l.runs[1].id, 2, "ids are unique");
}

#[test]
fn dropped_entries_are_counted() {
    let mut l = Ledger::new("r", "n");
    for i in 0..(MAX_HOPS as u64 + 7) {
        l.record_hop_start(&hop(v(&format!("1.{i}.0")), v(&format!("1.{}.0", i + 1))), 0);
    }
    assert_eq!(l.dropped.hops, 7);
    let value: serde_json::Value = serde_json::from_str(&l.to_json().unwrap()).unwrap();
    assert_eq!(value["dropped"]["hops"], 7);
}

#[test]
fn the_force_unlock_hint_quotes_a_forged_holder_so_pasting_it_runs_nothing() {
    // The holder is read from the ledger, which anyone who may edit ConfigMaps in the
    // namespace can rewrite: one that closes the hint's quotes would have its `$(…)` run
    // by the operator's shell when the suggested command is pasted.
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    let mut forged = Ledger::new("registry", "bsr");
    forged.lock = Some(Lock {
        holder: "x'$(touch /tmp/pwned)'@evil pid 5".into(),
        since: "2020-01-01T00:00:00Z".into(),
        command: "x".into(),
        plan: None,
        process: None,
    });
    s.write(&forged, None).unwrap();
    let err = Held::acquire(s, &claim(elsewhere("bo", 9), "helm safe-upgrade registry"), &Takeover::No).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(r"--force-unlock='x'\''$(touch /tmp/pwned)'\''@evil pid 5'"), "{text}");
    assert!(!text.contains("--force-unlock='x'$("), "{text}");
}

#[test]
fn a_record_edited_to_thousands_of_small_entries_is_trimmed_at_once_and_no_further_than_needed() {
    // One entry at a time, with the whole record serialised again after each, this took
    // minutes (the run stood before its lock): 4000 hops and 3000 snapshots of a record
    // someone edited by hand.
    let mut l = full_ledger();
    let one_hop = l.hops[0].clone();
    let one_snapshot = l.snapshots[0].clone();
    l.hops = vec![one_hop; 4000];
    l.snapshots = vec![one_snapshot; 3000];
    let started = std::time::Instant::now();
    let text = l.to_json().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(text.len() <= MAX_RECORD_BYTES, "{}", text.len());
    let back = Ledger::from_json(&text, "x", "").unwrap();
    assert_eq!(back.snapshots.len(), 3000, "hops go before snapshots");
    assert_eq!(back.runs, l.runs, "the only run is kept");
    let dropped = 4000 - back.hops.len();
    assert_eq!(back.dropped.hops, dropped as u64);
    assert!(back.trimmed.as_ref().unwrap().contains(&format!("{dropped} hops")), "{:?}", back.trimmed);
    // No further than needed: one hop more would not fit.
    let mut one_more = back.clone();
    one_more.hops.insert(0, l.hops[0].clone());
    assert!(serde_json::to_string_pretty(&one_more).unwrap().len() > MAX_RECORD_BYTES);
}

#[test]
fn an_edited_record_is_refused_saying_where_the_field_it_cannot_read_stands() {
    let text = full_ledger().to_json().unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["newest_ever"] = 12.into();
    let edited = serde_json::to_string_pretty(&value).unwrap();
    let line = edited.lines().position(|l| l.contains("\"newest_ever\": 12")).unwrap() + 1;
    let err = Ledger::from_json(&edited, "ConfigMap x", "").unwrap_err().to_string();
    assert!(err.contains("expected a string") && err.contains(&format!("at line {line} column")), "{err}");

    value["schema"] = "3".into();
    let err = Ledger::from_json(&value.to_string(), "ConfigMap x", "").unwrap_err().to_string();
    assert!(err.contains(r#""schema" is "3", not a whole number"#), "{err}");
    value.as_object_mut().unwrap().remove("schema");
    let err = Ledger::from_json(&value.to_string(), "ConfigMap x", "").unwrap_err().to_string();
    assert!(err.contains(r#"no "schema" field"#), "{err}");
}

#[test]
fn a_record_over_the_limit_is_held_as_it_was_stored() {
    // The read-back after a write that timed out compares the stored record with the
    // held one: they must be equal when the write landed, trimmed or not.
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn LedgerStore> = store(dir.path());
    let mut held = Held::acquire(s.clone(), &claim(elsewhere("ana", 7), "c"), &Takeover::No).unwrap();
    let one_snapshot = SnapshotRecord { run: None, version: v("1.0.0"), taken_at: now(), how: "x".repeat(2000) };
    held.ledger_mut().snapshots = vec![one_snapshot; 1000];
    held.save().unwrap();
    let stored = s.load().unwrap().unwrap().ledger;
    assert!(stored.snapshots.len() < 1000, "trimmed: {}", stored.snapshots.len());
    assert_eq!(&stored, held.ledger());
    assert_eq!(held.ledger().dropped.snapshots, 1000 - stored.snapshots.len() as u64);
}

#[test]
fn counters_edited_to_their_maximum_do_not_overflow() {
    let mut l = full_ledger();
    l.runs_recorded = u64::MAX;
    l.dropped = Dropped { runs: u64::MAX, hops: u64::MAX, snapshots: u64::MAX };
    let run = l.runs[0].clone();
    for _ in 0..=MAX_RUNS {
        l.record_run_start(run.clone());
        l.record_hop_start(&hop(v("1.1.2"), v("1.2.6")), 0);
        l.record_snapshot(&v("1.1.2"), "x");
    }
    for _ in 0..MAX_HOPS {
        l.record_hop_start(&hop(v("1.1.2"), v("1.2.6")), 0);
    }
    assert_eq!(l.runs_recorded, u64::MAX);
    assert_eq!(l.dropped, Dropped { runs: u64::MAX, hops: u64::MAX, snapshots: u64::MAX });
    l.fit().unwrap();
}
