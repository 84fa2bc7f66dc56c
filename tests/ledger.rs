//! The ledger's ConfigMap store through the tool's API client, against the Kubernetes API
//! stand-in: create, load, update, optimistic concurrency between writers, the lock, a
//! record deleted or forged under a run, refusals with the server's words, and where
//! `open_store` keeps the ledger.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use helm_safe_upgrade::kube::{Environment, KubeClient, KubeError};
use helm_safe_upgrade::plan::{Direction, Plan, Strategy};
use helm_safe_upgrade::run::holder::{Me, Process};
use helm_safe_upgrade::run::ledger::lock::Claim;
use helm_safe_upgrade::run::ledger::{
    ConfigMapStore, Held, HopOutcome, Ledger, LedgerError, LedgerStore, Revision, Stored, Takeover, configmap_name,
    open_store_at,
};
use helm_safe_upgrade::version::ChartVersion;

/// A hop as the planner would make it, for the journal.
fn minor_hop(from: &str, to: &str) -> helm_safe_upgrade::plan::Hop {
    helm_safe_upgrade::plan::Hop {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        kind: helm_safe_upgrade::plan::HopKind::Minor,
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
use kube_standin::testing::kubectl_path;
use kube_standin::{DenyRule, Options, StandIn, Verb};

struct Bed {
    standin: StandIn,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Bed {
    fn new() -> Bed {
        let standin = StandIn::start(Options { ready_delay: Duration::ZERO, ..Options::default() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        standin.write_kubeconfig(&kubeconfig).unwrap();
        let bed = Bed { standin, dir, kubeconfig };
        bed.kubectl(
            &["create", "-f", "-"],
            Some(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bsr"}}"#),
        );
        bed
    }

    /// The tool's client for this stand-in, configured as helm would pass it (KUBECONFIG).
    fn client(&self) -> KubeClient {
        let env = Environment::from_pairs([
            ("KUBECONFIG", self.kubeconfig.to_string_lossy().into_owned()),
            ("HOME", self.dir.path().to_string_lossy().into_owned()),
        ]);
        KubeClient::connect(&env, None, "bsr").unwrap()
    }

    fn store(&self, release: &str) -> Arc<dyn LedgerStore> {
        Arc::new(ConfigMapStore::new(self.client(), release))
    }

    /// What someone else does with kubectl in namespace bsr: `kubectl ARGS`, with stdin.
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) {
        use std::io::Write;
        let mut child = Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", "bsr"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn kubectl_create(&self, object: &serde_json::Value) {
        self.kubectl(&["create", "-f", "-"], Some(&object.to_string()));
    }

    fn delete_ledger(&self, release: &str) {
        self.kubectl(&["delete", "configmap", &configmap_name(release)], None);
    }

    fn configmap(&self, release: &str) -> serde_json::Value {
        self.standin
            .get("v1", "configmaps", Some("bsr"), &configmap_name(release))
            .expect("the ledger ConfigMap exists")
    }
}

/// A run on another machine (this one cannot judge whether it is alive).
fn run_elsewhere(user: &str, pid: u32, command: &str) -> Claim {
    Claim {
        me: Me { user: user.into(), process: Process { host: "ci-runner-7".into(), pid, started: None } },
        command: command.into(),
        plan: "upgrade 1.1.2 → 1.3.0 (2 hops)".into(),
    }
}

fn plan_to(to: &str) -> Plan {
    Plan {
        schema: helm_safe_upgrade::plan::document::SCHEMA,
        direction: Direction::Upgrade,
        policy: "bsr".into(),
        sources: None,
        release: Some("registry".into()),
        namespace: Some("bsr".into()),
        from: v("1.1.2"),
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

fn v(s: &str) -> ChartVersion {
    ChartVersion::parse(s).unwrap()
}

#[test]
fn create_load_update_and_labels() {
    let bed = Bed::new();
    let store = bed.store("registry");
    assert!(store.load().unwrap().is_none(), "no ConfigMap yet reads as no record");

    let mut ledger = Ledger::new("registry", "bsr");
    ledger.chart = Some("bufbuild/bsr".into());
    ledger.note_deployed(&v("1.1.2"));
    let rev = store.write(&ledger, None).unwrap();

    let cm = bed.configmap("registry");
    assert_eq!(cm["metadata"]["labels"]["app.kubernetes.io/managed-by"], "helm-safe-upgrade");
    assert_eq!(cm["metadata"]["labels"]["helm-safe-upgrade/release"], "registry");
    assert_eq!(cm["metadata"]["resourceVersion"].as_str().unwrap(), rev.0);
    let stored: serde_json::Value = serde_json::from_str(cm["data"]["ledger"].as_str().unwrap()).unwrap();
    assert_eq!(stored["schema"], helm_safe_upgrade::run::ledger::SCHEMA);
    assert_eq!(stored["newest_ever"], "1.1.2");
    assert_eq!(stored["chart"], "bufbuild/bsr");

    let Stored { mut ledger, revision } = store.load().unwrap().unwrap();
    assert_eq!(revision, rev);
    assert_eq!(ledger.newest_ever(), Some(&v("1.1.2")));
    ledger.note_deployed(&v("1.2.6"));
    let rev2 = store.write(&ledger, Some(&revision)).unwrap();
    assert_ne!(rev2, rev);
    assert_eq!(store.load().unwrap().unwrap().ledger.newest_ever(), Some(&v("1.2.6")));
}

#[test]
fn two_handles_cannot_both_win() {
    let bed = Bed::new();
    let (a, b) = (bed.store("registry"), bed.store("registry"));
    a.write(&Ledger::new("registry", "bsr"), None).unwrap();
    assert!(
        matches!(b.write(&Ledger::new("registry", "bsr"), None), Err(LedgerError::Conflict { .. })),
        "a second create is a conflict (AlreadyExists)"
    );

    let seen_by_a = a.load().unwrap().unwrap();
    let seen_by_b = b.load().unwrap().unwrap();
    let mut for_a = seen_by_a.ledger.clone();
    for_a.policy = Some("bsr".into());
    a.write(&for_a, Some(&seen_by_a.revision)).unwrap();
    let mut for_b = seen_by_b.ledger.clone();
    for_b.policy = Some("generic".into());
    let err = b.write(&for_b, Some(&seen_by_b.revision)).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
    assert_eq!(a.load().unwrap().unwrap().ledger.policy.as_deref(), Some("bsr"), "the first writer's record stands");

    // A stale revision that never existed is refused the same way.
    let err = b.write(&for_b, Some(&Revision("1".into()))).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
}

#[test]
fn a_held_lock_names_its_holder_and_survives_a_dropped_held() {
    let bed = Bed::new();
    let store = bed.store("registry");
    let ana = run_elsewhere("ana", 7, "helm safe-upgrade registry --to ***");
    let mut held = Held::acquire(store.clone(), &ana, &Takeover::No).unwrap();
    held.ledger_mut().set_in_progress(plan_to("1.3.0"), 0, None, None);
    held.ledger_mut().record_hop_start(&minor_hop("1.1.2", "1.2.6"), 0);
    held.ledger_mut().note_deployed(&v("1.2.6"));
    held.save().unwrap();
    // The run dies here without releasing: the lock and the journal stay.
    drop(held);

    let cm = bed.configmap("registry");
    let stored: serde_json::Value = serde_json::from_str(cm["data"]["ledger"].as_str().unwrap()).unwrap();
    assert_eq!(stored["lock"]["holder"], "ana@ci-runner-7 pid 7");
    assert_eq!(stored["hops"][0]["outcome"], "running");

    let bo = run_elsewhere("bo", 9, "helm safe-rollback registry");
    let err = Held::acquire(bed.store("registry"), &bo, &Takeover::No).unwrap_err();
    let text = err.to_string();
    let LedgerError::Locked(locked) = &err else { panic!("{err}") };
    let (holder, since, command) = (&locked.holder, &locked.since, &locked.command);
    assert_eq!(holder, "ana@ci-runner-7 pid 7");
    assert_eq!(command, "helm safe-upgrade registry --to ***");
    assert!(text.contains(&format!("locked by ana@ci-runner-7 pid 7 since {since}")), "{text}");
    assert!(text.contains("--force-unlock='ana@ci-runner-7 pid 7'") && text.contains("--resume"), "{text}");

    let mut forced =
        Held::acquire(bed.store("registry"), &bo, &Takeover::Named("ana@ci-runner-7 pid 7".into())).unwrap();
    assert_eq!(forced.ledger().lock.as_ref().unwrap().holder, "bo@ci-runner-7 pid 9");
    assert_eq!(forced.ledger().newest_ever(), Some(&v("1.2.6")));
    assert_eq!(forced.ledger().in_progress.as_ref().unwrap().plan.to, v("1.3.0"));
    // The dead run's hop is on record as interrupted, not as running for ever.
    assert_eq!(forced.ledger().hops[0].outcome, HopOutcome::Stopped);
    assert!(forced.ledger().hops[0].message.as_ref().unwrap().contains("interrupted"));
    forced.ledger_mut().clear_in_progress();
    let final_record = forced.release_lock().unwrap();
    assert!(final_record.lock.is_none());

    let stored = store.load().unwrap().unwrap().ledger;
    assert!(stored.lock.is_none() && stored.in_progress.is_none());
    assert_eq!(stored.hops[0].outcome, HopOutcome::Stopped);
}

#[test]
fn a_run_whose_lock_was_forced_away_cannot_write() {
    let bed = Bed::new();
    let mut stale = Held::acquire(bed.store("registry"), &run_elsewhere("ana", 7, "first"), &Takeover::No).unwrap();
    let _taker = Held::acquire(
        bed.store("registry"),
        &run_elsewhere("bo", 9, "second"),
        &Takeover::Named("ana@ci-runner-7 pid 7".into()),
    )
    .unwrap();
    stale.ledger_mut().record_snapshot(&v("1.1.2"), "command");
    let err = stale.save().unwrap_err();
    assert!(matches!(err, LedgerError::LockLost { .. }), "{err}");
    let stored = bed.store("registry").load().unwrap().unwrap().ledger;
    assert_eq!(stored.lock.unwrap().holder, "bo@ci-runner-7 pid 9");
    assert!(stored.snapshots.is_empty());
}

#[test]
fn racing_acquirers_on_the_cluster_one_wins() {
    let bed = Bed::new();
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let results: Vec<Result<String, Box<LedgerError>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (store, barrier) = (bed.store("registry"), barrier.clone());
                scope.spawn(move || {
                    barrier.wait();
                    Held::acquire(store, &run_elsewhere(&format!("run{i}"), i, "cmd"), &Takeover::No)
                        .map(|h| h.ledger().lock.clone().unwrap().holder)
                        .map_err(Box::new)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            let LedgerError::Locked(locked) = e.as_ref() else { panic!("{e}") };
            let holder = &locked.holder;
            assert_eq!(holder, winners[0]);
        }
    }
}

#[test]
fn a_foreign_configmap_of_the_same_name_is_not_overwritten() {
    let bed = Bed::new();
    bed.kubectl_create(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": configmap_name("registry"), "namespace": "bsr"}, "data": {"x": "y"}}));
    let err = bed.store("registry").load().unwrap_err();
    assert!(matches!(err, LedgerError::NotOurs { .. }), "{err}");
    let err = Held::acquire(bed.store("registry"), &run_elsewhere("ana", 7, "cmd"), &Takeover::IfGone).unwrap_err();
    assert!(matches!(err, LedgerError::NotOurs { .. }), "{err}");
    assert_eq!(bed.configmap("registry")["data"]["x"], "y");
}

#[test]
fn a_replace_of_a_deleted_record_is_a_conflict_and_loses_the_lock() {
    let bed = Bed::new();
    let store = bed.store("registry");
    let written = store.write(&Ledger::new("registry", "bsr"), None).unwrap();
    bed.delete_ledger("registry");
    let err = store.write(&Ledger::new("registry", "bsr"), Some(&written)).unwrap_err();
    assert!(matches!(err, LedgerError::Conflict { .. }), "NotFound on replace: {err}");

    let mut held = Held::acquire(bed.store("registry"), &run_elsewhere("ana", 7, "first"), &Takeover::No).unwrap();
    bed.delete_ledger("registry");
    held.ledger_mut().record_hop_start(&minor_hop("1.1.2", "1.2.6"), 0);
    let err = held.save().unwrap_err();
    assert!(matches!(err, LedgerError::LockLost { .. }), "{err}");
}

#[test]
fn a_write_into_a_missing_namespace_says_what_failed() {
    let bed = Bed::new();
    let store = ConfigMapStore::new(bed.client().in_namespace("nowhere"), "registry");
    assert!(store.load().unwrap().is_none());
    let err = store.write(&Ledger::new("registry", "nowhere"), None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LedgerError::Kube(KubeError::Api { code: 404, .. })), "{text}");
    assert!(text.starts_with("create the ledger of registry: the API server answered 404 NotFound"), "{text}");
}

#[test]
fn an_unreadable_record_is_corrupt() {
    let bed = Bed::new();
    bed.kubectl_create(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": configmap_name("registry"), "namespace": "bsr",
            "labels": {"app.kubernetes.io/managed-by": "helm-safe-upgrade"}},
        "data": {"ledger": "{not json"}}));
    let err = bed.store("registry").load().unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("kubectl get configmap helm-safe-upgrade.registry -n bsr"), "{err}");
}

#[test]
fn refusals_carry_the_servers_message() {
    let bed = Bed::new();
    let store = bed.store("registry");
    let name = configmap_name("registry");

    let denied = bed.standin.deny(DenyRule::new(&[Verb::Get], "configmaps").in_namespace("bsr"));
    let err = store.load().unwrap_err();
    let LedgerError::Forbidden { verb, stderr, .. } = &err else { panic!("{err}") };
    assert_eq!(verb, "get");
    assert!(
        stderr.contains(&format!(
            "configmaps \"{name}\" is forbidden: User \"standin\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"bsr\""
        )),
        "{stderr}"
    );
    assert!(err.to_string().contains("--local-ledger"), "{err}");
    bed.standin.allow(denied);

    let denied = bed.standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    let err = store.write(&Ledger::new("registry", "bsr"), None).unwrap_err();
    let LedgerError::Forbidden { verb, stderr, .. } = &err else { panic!("{err}") };
    assert_eq!(verb, "create");
    assert!(stderr.contains("User \"standin\" cannot create resource \"configmaps\""), "{stderr}");
    bed.standin.allow(denied);

    let rev = store.write(&Ledger::new("registry", "bsr"), None).unwrap();
    bed.standin.deny(DenyRule::new(&[Verb::Update], "configmaps").in_namespace("bsr").named(&name));
    let err = store.write(&Ledger::new("registry", "bsr"), Some(&rev)).unwrap_err();
    let LedgerError::Forbidden { verb, stderr, .. } = &err else { panic!("{err}") };
    assert_eq!(verb, "update");
    assert!(stderr.contains("cannot update resource \"configmaps\""), "{stderr}");
}

#[test]
fn open_store_keeps_the_ledger_on_the_cluster_unless_it_cannot_exist_there() {
    let bed = Bed::new();
    let client = bed.client();
    let root = bed.dir.path().join("state");

    let opened = open_store_at(&client, "registry", None, false, Some(&root)).unwrap();
    assert!(opened.warning.is_none() && opened.loaded.is_none(), "{:?}", opened.warning);
    assert_eq!(opened.store.location(), "ConfigMap helm-safe-upgrade.registry in namespace bsr");

    // No ConfigMap and no right to create one: the local file, said so.
    let denied = bed.standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    let opened = open_store_at(&client, "registry", Some("standin"), false, Some(&root)).unwrap();
    let warning = opened.warning.unwrap();
    assert!(
        warning.contains("may not create ConfigMaps in namespace bsr (a SelfSubjectAccessReview says no)"),
        "{warning}"
    );
    assert!(opened.store.location().starts_with(&root.to_string_lossy().into_owned()), "{}", opened.store.location());
    bed.standin.allow(denied);

    // A record on the cluster is always the one used.
    Held::acquire(
        Arc::new(ConfigMapStore::new(client.clone(), "registry")),
        &run_elsewhere("ana", 7, "x"),
        &Takeover::No,
    )
    .unwrap();
    bed.standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    let opened = open_store_at(&client, "registry", None, false, Some(&root)).unwrap();
    assert!(opened.warning.is_none());
    assert!(opened.loaded.unwrap().ledger.lock.is_some());

    // Reading forbidden: no silent local file.
    bed.standin.deny(DenyRule::new(&[Verb::Get], "configmaps").in_namespace("bsr"));
    let err = open_store_at(&client, "registry", None, false, Some(&root)).unwrap_err();
    assert!(matches!(err, LedgerError::Unverifiable { .. }), "{err}");
}

/// `--history` reads the record from the store a run would use, and writes nothing: no
/// ConfigMap created, no lock taken, a record of a newer version read as far as
/// understood (a run refuses it), a local ledger read where a run would have kept it.
#[test]
fn the_history_reads_where_a_run_would_and_writes_nothing() {
    use helm_safe_upgrade::run::ledger::{FileStore, open_for_showing};
    let bed = Bed::new();
    let client = bed.client();
    let root = bed.dir.path().join("state");
    // Every write to a ConfigMap refused: reading must not need one.
    let no_writes = [Verb::Create, Verb::Update, Verb::Patch, Verb::Delete]
        .map(|verb| bed.standin.deny(DenyRule::new(&[verb], "configmaps").in_namespace("bsr")));
    // Nothing on record (and this user may not create one, so the local file is asked).
    let opened = open_for_showing(&client, "registry", None, false, Some(&root)).unwrap();
    assert!(opened.loaded.is_none());
    assert!(bed.standin.get("v1", "configmaps", Some("bsr"), &configmap_name("registry")).is_none());
    assert!(!root.exists(), "nothing was created on this machine either");
    for id in no_writes {
        bed.standin.allow(id);
    }

    // A run holds the lock: the record is read as it is, the lock left with its holder.
    Held::acquire(bed.store("registry"), &run_elsewhere("ana", 7, "x"), &Takeover::No).unwrap();
    let before = bed.configmap("registry");
    let opened = open_for_showing(&client, "registry", None, false, Some(&root)).unwrap();
    let shown = opened.loaded.unwrap();
    assert_eq!(shown.ledger.lock.unwrap().holder, "ana@ci-runner-7 pid 7");
    assert!(shown.note.is_none() && opened.warning.is_none());
    assert_eq!(bed.configmap("registry"), before, "the record is untouched");

    // A record of a newer version: a run refuses it, the history reads it and says so.
    let mut cm = bed.configmap("registry");
    let mut record: serde_json::Value = serde_json::from_str(cm["data"]["ledger"].as_str().unwrap()).unwrap();
    record["schema"] = 99.into();
    record["a_field_of_the_future"] = true.into();
    cm["data"]["ledger"] = record.to_string().into();
    bed.kubectl(&["replace", "-f", "-"], Some(&cm.to_string()));
    let err = bed.store("registry").load().unwrap_err();
    assert!(matches!(err, LedgerError::NewerSchema { .. }), "{err}");
    let shown = open_for_showing(&client, "registry", None, false, Some(&root)).unwrap().loaded.unwrap();
    let note = shown.note.expect("a note");
    assert!(note.contains("schema 99") && note.contains("shown as far as this version understands it"), "{note}");
    assert_eq!(shown.ledger.lock.unwrap().holder, "ana@ci-runner-7 pid 7", "what it understands is shown");

    // No ConfigMap and no right to create one: the local file a run would have used.
    let file = FileStore::new(&root, Some("standin"), "bsr", "other");
    let mut local = Ledger::new("other", "bsr");
    local.note_deployed(&v("1.2.6"));
    file.write(&local, None).unwrap();
    bed.standin.deny(DenyRule::new(&[Verb::Create], "configmaps").in_namespace("bsr"));
    let opened = open_for_showing(&client, "other", Some("standin"), false, Some(&root)).unwrap();
    assert_eq!(opened.loaded.unwrap().ledger.newest_ever, Some(v("1.2.6")));
    let warning = opened.warning.unwrap();
    assert!(warning.contains("a ledger only this machine sees"), "{warning}");
    assert_eq!(opened.store.location(), file.path().display().to_string());
    // --local-ledger reads it too, whatever the cluster holds.
    let opened = open_for_showing(&client, "other", Some("standin"), true, Some(&root)).unwrap();
    assert!(opened.loaded.is_some() && opened.warning.unwrap().starts_with("--local-ledger"));
}
