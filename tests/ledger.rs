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
use helm_safe_upgrade::run::ledger::{
    ConfigMapStore, HopOutcome, Ledger, LedgerError, LedgerStore, Revision, Stored, configmap_name, open_store_at,
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
    assert_eq!(stored["schema"], 1);
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
    let mut held =
        Ledger::acquire(store.clone(), "ana@box pid 7", "helm safe-upgrade registry --to 1.3.0", false).unwrap();
    held.set_in_progress(serde_json::json!({"to": "1.3.0"}), 0, None).unwrap();
    held.record_hop_start(&v("1.1.2"), &v("1.2.6"), "minor-upgrade").unwrap();
    held.note_deployed(&v("1.2.6")).unwrap();
    // The run dies here without releasing: the lock and the journal stay.
    drop(held);

    let cm = bed.configmap("registry");
    let stored: serde_json::Value = serde_json::from_str(cm["data"]["ledger"].as_str().unwrap()).unwrap();
    assert_eq!(stored["lock"]["holder"], "ana@box pid 7");
    assert_eq!(stored["hops"][0]["outcome"], "running");

    let err = Ledger::acquire(bed.store("registry"), "bo@ci pid 9", "helm safe-rollback registry", false).unwrap_err();
    let text = err.to_string();
    let LedgerError::Locked { holder, since, command, .. } = &err else { panic!("{err}") };
    assert_eq!(holder, "ana@box pid 7");
    assert_eq!(command, "helm safe-upgrade registry --to 1.3.0");
    assert!(text.contains(&format!("locked by ana@box pid 7 since {since}")), "{text}");
    assert!(text.contains("--force-unlock") && text.contains("--resume"), "{text}");

    let mut forced =
        Ledger::acquire(bed.store("registry"), "bo@ci pid 9", "helm safe-upgrade registry --resume", true).unwrap();
    assert_eq!(forced.ledger().lock.as_ref().unwrap().holder, "bo@ci pid 9");
    assert_eq!(forced.newest_ever(), Some(&v("1.2.6")));
    assert_eq!(forced.ledger().in_progress.as_ref().unwrap().plan["to"], "1.3.0");
    forced.record_hop_end(HopOutcome::Succeeded, None).unwrap();
    forced.clear_in_progress().unwrap();
    let final_record = forced.release_lock().unwrap();
    assert!(final_record.lock.is_none());

    let stored = store.load().unwrap().unwrap().ledger;
    assert!(stored.lock.is_none() && stored.in_progress.is_none());
    assert_eq!(stored.hops[0].outcome, HopOutcome::Succeeded);
}

#[test]
fn a_run_whose_lock_was_forced_away_cannot_write() {
    let bed = Bed::new();
    let mut stale = Ledger::acquire(bed.store("registry"), "ana pid 7", "first", false).unwrap();
    let _taker = Ledger::acquire(bed.store("registry"), "bo pid 9", "second", true).unwrap();
    let err = stale.record_snapshot(&v("1.1.2"), "command").unwrap_err();
    assert!(matches!(err, LedgerError::LockLost { .. }), "{err}");
    let stored = bed.store("registry").load().unwrap().unwrap().ledger;
    assert_eq!(stored.lock.unwrap().holder, "bo pid 9");
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
                    Ledger::acquire(store, &format!("run {i}"), "cmd", false)
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
            let LedgerError::Locked { holder, .. } = e.as_ref() else { panic!("{e}") };
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
    let err = Ledger::acquire(bed.store("registry"), "ana pid 7", "cmd", true).unwrap_err();
    assert!(matches!(err, LedgerError::NotOurs { .. }), "{err}");
    assert_eq!(bed.configmap("registry")["data"]["x"], "y");
}

#[test]
fn open_store_uses_the_configmap_when_the_cluster_allows_it() {
    let bed = Bed::new();
    let opened = open_store_at(&bed.kubectl("default"), "registry", "bsr", None, Some(bed.dir.path())).unwrap();
    assert!(opened.warning.is_none(), "{:?}", opened.warning);
    assert_eq!(opened.store.location(), "ConfigMap helm-safe-upgrade.registry in namespace bsr");
    let held = Ledger::acquire(opened.store, "ana pid 7", "cmd", false).unwrap();
    held.release_lock().unwrap();
    assert!(
        bed.standin.get("v1", "configmaps", Some("bsr"), "helm-safe-upgrade.registry").is_some(),
        "written in the release's namespace"
    );
    assert!(!Path::new(&bed.dir.path().join("default")).exists(), "no local file");
}
