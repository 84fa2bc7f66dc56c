//! The ledger's ConfigMap store with the real kubectl against the Kubernetes API stand-in:
//! create, load, update, optimistic concurrency between two handles, the lock, and the
//! labels on the stored object.
//!
//! `Kubectl` passes no environment of its own, so each test points kubectl at its
//! stand-in through a two-line wrapper script that adds `--kubeconfig` (argv, no shell
//! interpolation of anything the test does not write itself).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use helm_safe_upgrade::helm::{Kubectl, Runner, Signals};
use helm_safe_upgrade::plan::{Direction, Plan, Strategy};
use helm_safe_upgrade::run::holder::{Me, Process};
use helm_safe_upgrade::run::ledger::lock::Claim;
use helm_safe_upgrade::run::ledger::{
    ConfigMapStore, Held, HopOutcome, Ledger, LedgerError, LedgerStore, Revision, Stored, Takeover, configmap_name,
    open_store_at,
};
use helm_safe_upgrade::version::ChartVersion;
use kube_standin::{Options, StandIn};

struct Bed {
    standin: StandIn,
    dir: tempfile::TempDir,
    kubectl_bin: PathBuf,
}

impl Bed {
    fn new() -> Bed {
        let standin = StandIn::start(Options { ready_delay: std::time::Duration::ZERO, ..Options::default() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        standin.write_kubeconfig(&kubeconfig).unwrap();
        let kubectl_bin = dir.path().join("kubectl");
        std::fs::write(
            &kubectl_bin,
            format!(
                "#!/bin/sh\nexec '{}' --kubeconfig '{}' \"$@\"\n",
                kube_standin::testing::kubectl_path().display(),
                kubeconfig.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&kubectl_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bed = Bed { standin, dir, kubectl_bin };
        bed.create_namespace("bsr");
        bed
    }

    fn kubectl(&self, namespace: &str) -> Kubectl {
        Kubectl::new(
            Runner::new(Signals::default(), false),
            Some(self.kubectl_bin.clone()),
            namespace.to_string(),
            None,
        )
    }

    fn store(&self, release: &str) -> Arc<dyn LedgerStore> {
        Arc::new(ConfigMapStore::new(self.kubectl("bsr"), release))
    }

    fn create_namespace(&self, name: &str) {
        // The stand-in reads protobuf only for a few types, so send the Namespace as JSON.
        let body = format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
        self.kubectl("default")
            .run_with_input("create a namespace", vec!["create".into(), "-f".into(), "-".into()], body.as_bytes())
            .unwrap();
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
    assert_eq!(stored["schema"], 2);
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
    held.ledger_mut().record_hop_start(&v("1.1.2"), &v("1.2.6"), "minor");
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
fn a_deleted_ledger_configmap_means_the_lock_is_lost() {
    let bed = Bed::new();
    let mut held = Held::acquire(bed.store("registry"), &run_elsewhere("ana", 7, "first"), &Takeover::No).unwrap();
    bed.kubectl("bsr")
        .run("delete the ledger", vec!["delete".into(), "configmap".into()], &[&configmap_name("registry")])
        .unwrap();
    held.ledger_mut().record_hop_start(&v("1.1.2"), &v("1.2.6"), "minor");
    let err = held.save().unwrap_err();
    assert!(matches!(err, LedgerError::LockLost { .. }), "{err}");
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
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{}","namespace":"bsr"}},"data":{{"x":"y"}}}}"#,
        configmap_name("registry")
    );
    bed.kubectl("bsr")
        .run_with_input("create a foreign ConfigMap", vec!["create".into(), "-f".into(), "-".into()], body.as_bytes())
        .unwrap();
    let err = Held::acquire(bed.store("registry"), &run_elsewhere("ana", 7, "cmd"), &Takeover::IfGone).unwrap_err();
    assert!(matches!(err, LedgerError::NotOurs { .. }), "{err}");
    assert_eq!(bed.configmap("registry")["data"]["x"], "y");
}

#[test]
fn open_store_uses_the_configmap_when_the_cluster_allows_it() {
    let bed = Bed::new();
    let opened = open_store_at(&bed.kubectl("default"), "registry", "bsr", None, false, Some(bed.dir.path())).unwrap();
    assert!(opened.warning.is_none(), "{:?}", opened.warning);
    assert_eq!(opened.store.location(), "ConfigMap helm-safe-upgrade.registry in namespace bsr");
    let held = Held::acquire(opened.store, &run_elsewhere("ana", 7, "cmd"), &Takeover::No).unwrap();
    held.release_lock().unwrap();
    assert!(
        bed.standin.get("v1", "configmaps", Some("bsr"), "helm-safe-upgrade.registry").is_some(),
        "written in the release's namespace"
    );
    assert!(!Path::new(&bed.dir.path().join("default")).exists(), "no local file");
}
