//! `helm safe-upgrade` end to end with the other chart sources and the run's guard rails:
//! a directory of packaged charts with a failing middle hop brought back by the policy's
//! own downgrade, an OCI registry with Basic and Bearer auth, the ledger lock, and the
//! operator's extra values. Real helm 3.19.0 and 4.1.4 against the Kubernetes API stand-in
//! (or the cluster of HSU_E2E_KUBECONFIG).

#[path = "e2e/bed.rs"]
mod bed;

use std::path::Path;
use std::sync::Arc;

use bed::{Bed, VALUES, bed_policy, yaml_to_json};
use chart_standin::{Credentials, OciAuth, OciOptions, OciRegistry};
use helm_safe_upgrade::run::holder::{Me, Process};
use helm_safe_upgrade::run::ledger::lock::Claim;
use helm_safe_upgrade::run::ledger::{Held, LedgerError, LedgerStore, Takeover, open_store};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

/// A directory of every packaged bsr version, where 1.2.6's server image never becomes
/// ready (its migration hook still runs and succeeds): the hop to 1.2.6 fails at the
/// rollout wait, after the upgrade migrations could have run.
fn chart_dir_with_broken_126(bed: &Bed) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    bed.package_fixture("bsr", dir.path());
    let good = dir.path().join("bsr-1.2.6.tgz");
    assert!(good.exists());
    std::fs::remove_file(&good).unwrap();

    let src = tempfile::tempdir().unwrap();
    let root = chart_standin::fixtures::write_chart_dir("bsr", "1.2.6", src.path()).unwrap();
    let values_path = root.join("values.yaml");
    let values = std::fs::read_to_string(&values_path).unwrap();
    let broken = values.replacen("  tag: \"\"\n  pullPolicy", "  tag: \"broken\"\n  pullPolicy", 1).replacen(
        "  imageTag: \"\"",
        "  imageTag: \"1.2.6\"",
        1,
    );
    assert!(
        broken.contains("tag: \"broken\"") && broken.contains("imageTag: \"1.2.6\""),
        "the fixture's values.yaml changed:\n{values}"
    );
    std::fs::write(&values_path, bed.chart_values(&broken)).unwrap();
    bed.env.helm_ok(&["package", root.to_str().unwrap(), "-d", dir.path().to_str().unwrap()]);
    assert!(good.exists(), "helm package wrote bsr-1.2.6.tgz");
    dir
}

/// The reason a pod whose image cannot be pulled waits with, as the tool quotes it. The
/// stand-in always says `ImagePullBackOff`; a kubelet says `ErrImagePull` after each failed
/// pull and `ImagePullBackOff` while it waits to try again, so on a cluster either is right.
fn image_pull_failure(bed: &Bed, text: &str) -> &'static str {
    if bed.standin().is_some() || text.contains("container bufd ImagePullBackOff") {
        "ImagePullBackOff"
    } else {
        "ErrImagePull"
    }
}

fn failing_middle_hop_is_brought_back_by_the_policy(version: HelmVersion) {
    let bed = Bed::new(version);
    let charts = chart_dir_with_broken_126(&bed);
    let charts_path = charts.path().to_str().unwrap();
    bed.install_from(&[], &format!("{charts_path}/bsr-1.0.4.tgz"), &[], VALUES);
    let policy = bed_policy();

    let started = std::time::Instant::now();
    let (stdout, stderr) = bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.3.0",
            "--chart",
            charts_path,
            "--policy",
            &policy,
            "--timeout",
            &bed.fail_timeout("6s"),
            // The operator's change was in effect when hop 2 started: the way back keeps it.
            "--set",
            "config.logLevel=debug",
            "--yes",
            "-o",
            "json",
        ],
        4,
    );
    eprintln!("{version}: failing run took {:.1}s", started.elapsed().as_secs_f64());
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(report["result"], "recovered", "{stdout}\n{stderr}");
    assert_eq!(report["failed_hop"], 2, "{stdout}");
    assert_eq!(report["at"], "1.1.9", "{stdout}");
    let path: Vec<&str> =
        report["plan"]["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(path, ["1.1.9", "1.2.6", "1.3.0"]);

    // The steps of hop 2: the deploy failed, then the policy's migrate-down, in order:
    // redeploy 1.1.9, wait for the 1.2.6 pods to be gone, migratedownto, verify.
    let hop2: Vec<(String, String)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["hop"] == 2)
        .map(|s| (s["action"].as_str().unwrap().to_string(), s["outcome"].as_str().unwrap().to_string()))
        .collect();
    let hop2: Vec<(&str, &str)> = hop2.iter().map(|(a, o)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        hop2,
        [("deploy", "failed"), ("deploy", "ok"), ("wait-gone", "ok"), ("run", "ok"), ("verify", "ok")],
        "{stdout}"
    );
    assert!(report["steps"].as_array().unwrap().iter().all(|s| s["hop"] != 3), "hop 3 never started: {stdout}");
    // It failed where it was meant to: the server rollout, after the pre-upgrade hook
    // (which may have migrated the database) had succeeded.
    let error = report["error"].as_str().unwrap();
    // (helm 4 names the Deployment that is not ready; helm 3 says only "context deadline exceeded".)
    assert!(error.contains("upgrade bsr to 1.2.6 failed") && error.contains("UPGRADE FAILED"), "{error}");
    assert!(version.major() == 3 || error.contains(&format!("Deployment/{}/bsr-server not ready", bed.ns)), "{error}");
    // With either helm the tool says which workload is short and what its new pods say.
    let explained = error.split_once("\nnot ready:\n").map(|(_, e)| e).unwrap_or_else(|| panic!("{error}"));
    let lines: Vec<&str> = explained.lines().collect();
    assert!(lines[0].starts_with("  Deployment bsr-server: waiting for rollout to finish: "), "{error}");
    assert!(lines[1].starts_with("    ") && lines[1].contains("pod"), "{error}");
    assert!(lines[1].contains(&format!("container bufd {}", image_pull_failure(&bed, lines[1]))), "{error}");
    assert!(lines[1].contains("registry.example/bufbuild/bufd:broken"), "{error}");
    assert!(!error.contains("password") && !error.contains("s3cret-value"), "no secret in the error: {error}");
    assert!(!error.contains("hook"), "the hook was meant to succeed: {error}");

    // The release is deployed at 1.1.9.
    let meta = bed.metadata();
    assert_eq!(meta["version"], "1.1.9", "{meta}");
    assert_eq!(meta["status"], "deployed", "{meta}");
    assert_eq!(bed.server_version_label(), "1.1.9");

    // The down-migration ran exactly once, from 1.2.6 to 1.1.9 with 1.1.9's schema.
    let downs: Vec<Value> = bed
        .list("v1", "configmaps")
        .into_iter()
        .filter(|cm| cm["metadata"]["name"].as_str().unwrap().starts_with("bsr-migratedownto-"))
        .collect();
    assert_eq!(downs.len(), 1, "{downs:?}");
    let cm = bed.get("v1", "configmaps", "bsr-migratedownto-222").expect("migratedownto 222 ran");
    assert_eq!(cm["data"]["from"], "1.2.6");
    assert_eq!(cm["data"]["to"], "1.1.9");
    assert_eq!(cm["data"]["schema"], "222");

    // No pod of 1.2.6 is left; the 1.1.9 pods serve.
    assert!(bed.pods_of_version("1.2.6").is_empty(), "1.2.6 pods remain: {:?}", bed.pods_of_version("1.2.6"));
    assert_eq!(bed.server_pods_of_version("1.1.9").len(), 2, "two replicas of 1.1.9");

    // The values are exactly the user's plus the operator's change (in effect since hop
    // 1), and helm's history has no pending revision.
    let mut expected = yaml_to_json(VALUES);
    merge(&mut expected, &serde_json::json!({"config": {"logLevel": "debug"}}));
    assert_eq!(bed.user_values(), expected);
    let history = bed.history();
    assert!(history.iter().all(|(_, s, _)| !s.starts_with("pending")), "{history:?}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.1.9"], "{history:?}");
    assert_eq!(history.last().unwrap().1, "deployed");
    assert_eq!(history[2].1, "failed", "{history:?}");

    // The ledger: no lock, hop 2 recorded as failed, and 1.2.6 counts as deployed (its
    // pre-upgrade migration ran), which bounds later rollbacks.
    let ledger = bed.ledger_record().expect("a ledger ConfigMap");
    assert!(ledger["lock"].is_null(), "{ledger}");
    assert_eq!(ledger["newest_ever"], "1.2.6", "{ledger}");
    let outcomes: Vec<(&str, &str, &str)> = ledger["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].as_str().unwrap(), h["to"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("1.0.4", "1.1.9", "succeeded"), ("1.1.9", "1.2.6", "failed")], "{ledger}");
    assert!(!stdout.contains("s3cret-value") && !stderr.contains("s3cret-value"), "a secret leaked:\n{stderr}");
}
both_helms!(directory_source_recovery, super::failing_middle_hop_is_brought_back_by_the_policy);

/// Log in, install 1.0.4 from the registry, show that without credentials the tool stops
/// before changing anything and says how to log in, then upgrade to 1.2.6 from it.
fn oci_scenario(bed: &Bed, auth: OciAuth, explicit_registry_config: bool) {
    let registry = OciRegistry::start(bed.charts.path(), OciOptions { auth, ..OciOptions::default() })
        .expect("start the OCI registry");
    let host = registry.host();
    let reference = registry.reference("bsr");
    // Hermetic: no docker config of the machine's user, and helm's registry config either
    // named explicitly or found under the helm home (HELM_CONFIG_HOME), as helm finds it.
    let docker_config = bed.env.dir().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let registry_config = bed.env.dir().join("registry-config.json");
    let default_registry_config = bed.env.dir().join("config/registry/config.json");
    let mut envs: Vec<(&str, &str)> = vec![("DOCKER_CONFIG", docker_config.to_str().unwrap())];
    if explicit_registry_config {
        envs.push(("HELM_REGISTRY_CONFIG", registry_config.to_str().unwrap()));
    }

    bed.helm_with_ok(
        &envs,
        &["registry", "login", &host, "-u", "alice", "--password-stdin", "--plain-http"],
        Some("s3cret"),
    );
    let written = if explicit_registry_config { &registry_config } else { &default_registry_config };
    assert!(written.exists(), "helm registry login wrote {}", written.display());
    bed.install_from(&envs, &reference, &["--version", "1.0.4", "--plain-http"], VALUES);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"]);

    // Logged out: refused before any change, naming the way to log in.
    bed.helm_with_ok(&envs, &["registry", "logout", &host], None);
    let (_, stderr) =
        bed.run_env_expect(&envs, &["bsr", "--to", "1.2.6", "--chart", &reference, "--plain-http", "--yes"], 1);
    assert!(stderr.contains(&format!("run `helm registry login {host}`")), "{stderr}");
    assert!(stderr.contains(&format!("registry {host}")), "the message names the registry: {stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "a refused run changed the release");
    assert!(bed.ledger_record().is_none_or(|l| l["lock"].is_null()), "a refused run left a lock");

    // Logged in again: 1.0.4 → 1.1.9 → 1.2.6 from the registry.
    bed.helm_with_ok(
        &envs,
        &["registry", "login", &host, "-u", "alice", "--password-stdin", "--plain-http"],
        Some("s3cret"),
    );
    let (stdout, stderr) = bed.run_env_expect(
        &envs,
        &["bsr", "--to", "1.2.6", "--chart", &reference, "--plain-http", "--yes", "-o", "json"],
        0,
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "completed", "{stdout}\n{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
    assert_eq!(bed.metadata()["status"], "deployed");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
    assert_eq!(bed.server_version_label(), "1.2.6");
    assert_eq!(bed.ledger_record().unwrap()["chart"], reference.as_str(), "the ledger remembers the source");
    // The registry saw authenticated pulls of the two hop versions (helm's own pulls).
    let requests = registry.requests();
    for tag in ["1.1.9", "1.2.6"] {
        assert!(
            requests.iter().any(|r| r.target.ends_with(&format!("/manifests/{tag}")) && r.status == 200),
            "no successful pull of {tag}: {requests:?}"
        );
    }
    assert!(!stderr.contains("s3cret"), "the password leaked:\n{stderr}");

    // The next run needs no --chart: the ledger's source is the one passed here.
    let (stdout, _) = bed.run_env_expect(&envs, &["bsr", "--to", "1.3.0", "--plain-http", "--plan"], 0);
    assert!(stdout.contains(&format!("{reference} (from the ledger)")), "{stdout}");
    // One who may edit ConfigMaps in the namespace points the ledger at a registry of
    // theirs: never passed with --chart here, so it is not deployed from.
    let forged = reference.replace("/bsr", "/elsewhere/bsr");
    bed.edit_ledger(|r| r["chart"] = forged.clone().into());
    let (stdout, _) = bed.run_env_expect(&envs, &["bsr", "--to", "1.3.0", "--plain-http", "--yes", "-o", "json"], 3);
    let refused: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refused["refused"]["rule"], "ledger-chart", "{stdout}");
    assert!(refused["refused"]["message"].as_str().unwrap().contains(&forged), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"], "a refusal changes nothing");
    assert!(!registry.requests().iter().any(|r| r.target.contains("/elsewhere/")), "the forged source was read");
}

fn oci_with_basic_auth(version: HelmVersion) {
    let bed = Bed::new(version);
    oci_scenario(&bed, OciAuth::Basic(Credentials::new("alice", "s3cret")), true);
}
both_helms!(oci_basic, super::oci_with_basic_auth);

fn oci_with_bearer_auth(version: HelmVersion) {
    let bed = Bed::new(version);
    oci_scenario(&bed, OciAuth::Bearer(Credentials::new("alice", "s3cret")), false);
}
both_helms!(oci_bearer, super::oci_with_bearer_auth);

fn the_lock_stops_a_second_run(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);

    // Another run (on another machine) holds the lock.
    let opened = open_store(&bed.kube_client(), "bsr", None, false).expect("open the ledger store");
    assert!(opened.warning.is_none(), "the shared ConfigMap store, not a local file: {:?}", opened.warning);
    let store: Arc<dyn LedgerStore> = opened.store;
    let ana = Me { user: "ana".into(), process: Process { host: "ci-runner-7".into(), pid: 4242, started: None } };
    let claim = Claim {
        me: ana,
        command: "helm safe-upgrade bsr --to *** --set ***".into(),
        plan: "upgrade 1.0.4 → 1.3.0 (3 hops)".into(),
    };
    let mut held = Held::acquire(store.clone(), &claim, &Takeover::No).expect("take the lock");
    let since = held.ledger().lock.as_ref().unwrap().since.clone();

    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"], 1);
    assert!(
        stderr.contains(&format!("release bsr is locked by ana@ci-runner-7 pid 4242 since {since}")),
        "names the holder and since when:\n{stderr}"
    );
    assert!(stderr.contains("helm safe-upgrade bsr --to *** --set ***"), "names what the holder runs:\n{stderr}");
    assert!(stderr.contains("(upgrade 1.0.4 → 1.3.0 (3 hops))"), "and its plan:\n{stderr}");
    assert!(
        stderr.contains("--force-unlock='ana@ci-runner-7 pid 4242'"),
        "says how to break the lock of a run elsewhere, by naming it:\n{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"], "a locked-out run changed the release");
    let record = bed.ledger_record().unwrap();
    assert_eq!(record["lock"]["holder"], "ana@ci-runner-7 pid 4242", "the holder keeps its lock: {record}");
    assert!(record["hops"].as_array().unwrap().is_empty(), "{record}");

    // A bare --force-unlock cannot judge a run on another machine, and a wrong name is refused.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--force-unlock"], 1);
    assert!(stderr.contains("runs on another machine"), "{stderr}");
    let (_, stderr) = bed.run_expect(
        &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--force-unlock=ana@ci-runner-7 pid 1"],
        1,
    );
    assert!(stderr.contains("name the holder exactly"), "{stderr}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4"]);
    // Naming the holder exactly breaks it and the run completes.
    bed.run_expect(
        &["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--force-unlock=ana@ci-runner-7 pid 4242"],
        0,
    );
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6"]);
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "a completed run gives the lock back: {record}");
    assert!(record["in_progress"].is_null(), "{record}");
    assert_eq!(record["newest_ever"], "1.2.6", "{record}");
    assert_eq!(record["chart"], "demo/bsr", "{record}");
    let hops: Vec<(&str, &str, &str)> = record["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].as_str().unwrap(), h["to"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(hops, [("1.0.4", "1.1.9", "succeeded"), ("1.1.9", "1.2.6", "succeeded")], "{record}");
    assert!(record["hops"].as_array().unwrap().iter().all(|h| h["ended_at"].is_string()), "{record}");

    // The broken-into run knows it lost the lock.
    held.ledger_mut().policy = Some("stale".into());
    assert!(matches!(held.save(), Err(LedgerError::LockLost { .. })), "the old holder's write must fail");
    assert_eq!(bed.ledger_record().unwrap()["policy"], "bsr", "the stale holder overwrote the record");

    // And the next run needs no --force-unlock.
    bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
    let record = bed.ledger_record().unwrap();
    assert!(record["lock"].is_null(), "{record}");
    assert_eq!(record["newest_ever"], "1.3.0");
    assert_eq!(record["hops"].as_array().unwrap().len(), 3, "{record}");
}
both_helms!(lock, super::the_lock_stops_a_second_run);

/// `a` with `b` merged in the way helm merges values: maps deep, everything else replaced.
fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

fn operator_values_apply_to_every_hop(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let extra_yaml = "config:\n  features:\n    webhooks: false\npostgres:\n  port: 6543\n";
    let extra = bed.env.dir().join("extra.yaml");
    std::fs::write(&extra, extra_yaml).unwrap();
    let mut expected = yaml_to_json(VALUES);
    merge(&mut expected, &yaml_to_json(extra_yaml));
    merge(&mut expected, &serde_json::json!({"config": {"logLevel": "debug"}}));

    let (stdout, _) = bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.3.0",
            "--chart",
            "demo/bsr",
            "-f",
            extra.to_str().unwrap(),
            "--set",
            "config.logLevel=debug",
            "--yes",
            "-o",
            "json",
        ],
        0,
    );
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["result"], "completed", "{stdout}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
    assert_eq!(bed.user_values_at(1), yaml_to_json(VALUES), "the install is untouched");
    for revision in 2..=4 {
        assert_eq!(
            bed.user_values_at(revision),
            expected,
            "revision {revision} carries the values and exactly the operator's changes"
        );
    }
    assert_eq!(bed.user_values(), expected);
    // And the chart rendered them.
    let config = bed.get("v1", "configmaps", "bsr-config").unwrap();
    let rendered = config["data"]["config.yaml"].as_str().unwrap();
    assert!(
        rendered.contains("logLevel: debug") && rendered.contains("port: 6543") && rendered.contains("webhooks: false"),
        "{rendered}"
    );
    assert!(
        rendered.contains("remotePlugins: true") && rendered.contains("host: db.prod.internal"),
        "the original values stay: {rendered}"
    );
    assert!(Path::new(&extra).exists(), "the operator's file is left alone");
}
both_helms!(operator_values, super::operator_values_apply_to_every_hop);

/// The operator's own `--set` breaks the first hop (an image tag that never pulls): the way
/// back deploys the old version with the values it ran with, without that `--set`, so it
/// succeeds; and the failure says which workload is not ready and why.
fn a_breaking_set_is_left_out_of_the_way_back(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let policy = bed_policy();
    let (stdout, stderr) = bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.1.9",
            "--chart",
            "demo/bsr",
            "--policy",
            &policy,
            "--set",
            "image.tag=broken-typo",
            "--set",
            "migration.imageTag=1.1.9",
            "--timeout",
            &bed.fail_timeout("5s"),
            "--yes",
            "-o",
            "json",
        ],
        4,
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(report["result"], "recovered", "{stdout}\n{stderr}");
    assert_eq!(report["at"], "1.0.4", "{stdout}");
    assert!(
        stderr.contains("bringing bsr back to 1.0.4 (without this run's -f/--set: the release ran without them"),
        "{stderr}"
    );
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("\nnot ready:\n  Deployment bsr-server: "), "{error}");
    let failure = image_pull_failure(&bed, error);
    // The report is for anyone: the operator's value is hidden, in the pods' words too.
    assert!(error.contains(&format!("container bufd {failure}")) && error.contains("bufd:***"), "{error}");
    assert!(!error.contains("broken-typo") && !stderr.contains("broken-typo"), "{error}\n{stderr}");

    // Back at 1.0.4 with exactly the values it had: the bad tag is not in them.
    let meta = bed.metadata();
    assert_eq!((meta["version"].as_str(), meta["status"].as_str()), (Some("1.0.4"), Some("deployed")), "{meta}");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.0.4"]);
    assert!(bed.pods_of_version("1.1.9").is_empty(), "{:?}", bed.pods_of_version("1.1.9"));
    assert_eq!(bed.server_pods_of_version("1.0.4").len(), 2);
    let ledger = bed.ledger_record().expect("a ledger ConfigMap");
    assert!(ledger["lock"].is_null(), "{ledger}");
}
both_helms!(breaking_set_recovery, super::a_breaking_set_is_left_out_of_the_way_back);

/// The way back itself stops half-way: the older chart is deployed again, but the
/// down-migration cannot run (here its record already exists, so `kubectl create` fails).
/// The advice must be the rest of the procedure, in order, with the full command: another
/// safe-rollback would find nothing older than the deployed 1.1.9 to go to.
fn a_way_back_stopped_half_way_says_what_is_left(version: HelmVersion) {
    let bed = Bed::new(version);
    let charts = chart_dir_with_broken_126(&bed);
    let charts_path = charts.path().to_str().unwrap();
    bed.install_from(&[], &format!("{charts_path}/bsr-1.1.9.tgz"), &[], VALUES);
    let kubectl = bed
        .env
        .command(&kube_standin::testing::kubectl_path())
        .args([
            "--namespace",
            &bed.ns,
            "create",
            "configmap",
            "bsr-migratedownto-222",
            "--from-literal=by=someone-else",
        ])
        .output()
        .unwrap();
    assert!(kubectl.status.success(), "{}", String::from_utf8_lossy(&kubectl.stderr));
    let policy = bed_policy();
    let (stdout, stderr) = bed.run_expect(
        &[
            "bsr",
            "--to",
            "1.2.6",
            "--chart",
            charts_path,
            "--policy",
            &policy,
            "--timeout",
            &bed.fail_timeout("5s"),
            "--yes",
            "-o",
            "json",
        ],
        1,
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(report["result"], "failed", "{stdout}\n{stderr}");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("the way back failed too") && error.contains("already exists"), "{error}");
    let next = report["next_steps"].as_str().unwrap();
    assert!(
        next.starts_with("release bsr is deployed at 1.1.9 (revision 3), but the policy's way back stopped"),
        "{next}"
    );
    assert!(
        next.contains(&format!(
            "1. run bufd migratedownto: kubectl --namespace {} create configmap bsr-migratedownto-222 --from-literal=from=1.2.6 --from-literal=to=1.1.9 --from-literal=schema=222; 2. verify 1.1.9",
            bed.ns
        )),
        "{next}"
    );
    assert!(!next.contains("safe-rollback"), "nothing older to roll back to: {next}");
    let meta = bed.metadata();
    assert_eq!((meta["version"].as_str(), meta["status"].as_str()), (Some("1.1.9"), Some("deployed")), "{meta}");
    assert!(bed.ledger_record().unwrap()["lock"].is_null(), "a failed run gives the lock back");
}
both_helms!(half_way_back, super::a_way_back_stopped_half_way_says_what_is_left);
