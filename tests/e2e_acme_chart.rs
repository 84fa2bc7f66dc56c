//! The acme fixture chart on the e2e bed (real helm 3.19.0 and 4.1.4, the bed's
//! repository `demo`, the Kubernetes API stand-in or the cluster of HSU_E2E_KUBECONFIG):
//! `demo/acme` installs and upgrades like the other fixtures, its 3.9.0 silently ignores
//! the renamed `postgres.host`, and the bed's acme policy (bed/policies/acme-bed.yaml)
//! refuses a live plan across 4.0.0 without `redis.host`, in the vendor's words.
//! What each version renders and how helm refuses it: crates/chart-standin/tests/acme.rs.
//! Then the preflight on acme: every hop rendered before the first change, refusals, the
//! ledger's record of the checks, what only a render against the cluster sees (4.3.0's
//! `lookup`); and `--diff=full` on bsr, whose values can copy a password into a plain
//! env var (acme renders its password only into its Secret).

#[path = "e2e/bed.rs"]
mod bed;

use base64::Engine;
use bed::{Bed, finish};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

fn acme_policy() -> String {
    format!("{}/bed/policies/acme-bed.yaml", env!("CARGO_MANIFEST_DIR"))
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_owned)
}

fn acme_installs_upgrades_and_is_planned_with_its_value_rules(version: HelmVersion) {
    let bed = Bed::new(version);
    let ns = bed.ns.clone();
    let helm = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--namespace", &ns, "--wait", "--timeout", "60s"]);
        bed.helm_with_ok(&[], &all, None);
    };
    helm(&[
        "install",
        "acme",
        "demo/acme",
        "--version",
        "3.8.0",
        "--create-namespace",
        "--set",
        "postgres.host=db.prod.internal",
    ]);
    let deployment = || bed.get("apps/v1", "deployments", "acme").expect("Deployment acme");
    let d = deployment();
    assert_eq!(env_value(&d, "ACME_POSTGRES_HOST").as_deref(), Some("db.prod.internal"), "{version}");
    assert_eq!(d["status"]["readyReplicas"], 1, "{version}: {}", d["status"]);
    assert!(bed.get("v1", "configmaps", "acme-legacy").is_some(), "{version}");

    // The live plan to 4.1.0: the release's values lack redis.host, which 4.0.0 requires.
    let plan = ["acme", "--to", "4.1.0", "--chart", "demo/acme", "--policy", &acme_policy(), "--plan"];
    let (stdout, stderr) = bed.run_expect(&plan, 3);
    let out = format!("{stdout}{stderr}");
    assert!(out.contains("values-required"), "{version}: {out}");
    assert!(out.contains("when upgrading to chart version 4.0.0 or later, add redis.host"), "{version}: {out}");
    // With it set, the plan carries the rename with the hop to 3.9.0.
    let (stdout, _) = bed.run_expect(&[&plan[..], &["--set", "redis.host=redis.acme.svc", "-o", "json"]].concat(), 0);
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let to: Vec<&str> = plan["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["3.9.0", "4.0.0", "4.1.0"], "{version}: {stdout}");
    assert_eq!(plan["hops"][0]["values"][0]["rename"]["from"], "postgres.host", "{version}: {stdout}");

    // By hand: `--reuse-values` takes the old chart's defaults (helm's rule), which have no
    // `database`, so 3.9.0 fails to render and nothing changes.
    let reuse = ["upgrade", "acme", "demo/acme", "--version", "3.9.0", "--reuse-values", "--namespace", &ns];
    let out = bed.helm_with(&[], &reuse, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(".Values.database.host"), "{version}: {stderr}");
    // `--reset-then-reuse-values` (the new chart's defaults under the release's values)
    // succeeds, and the release's postgres.host is silently ignored: the server now talks
    // to the default host.
    helm(&["upgrade", "acme", "demo/acme", "--version", "3.9.0", "--reset-then-reuse-values"]);
    let d = deployment();
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"], "3.9.0", "{version}");
    assert_eq!(d["status"]["readyReplicas"], 1, "{version}: {}", d["status"]);
    assert_eq!(env_value(&d, "ACME_POSTGRES_HOST"), None, "{version}");
    assert_eq!(env_value(&d, "ACME_DATABASE_HOST").as_deref(), Some("postgres.acme.svc.cluster.local"), "{version}");
}

both_helms!(acme_on_the_bed, super::acme_installs_upgrades_and_is_planned_with_its_value_rules);

// ---------------------------------------------------------------------------------------
// The preflight on acme: every hop rendered by helm before the first change.

/// `helm install acme demo/acme --version 3.8.0` with a host and a password, as an operator
/// of 3.8.0 set them.
fn install_acme_380(bed: &Bed) {
    let ns = bed.ns.as_str();
    let install = ["install", "acme", "demo/acme", "--version", "3.8.0", "--namespace", ns, "--create-namespace"];
    let values = ["--set", "postgres.host=db.prod.internal", "--set", "postgres.password=hunter2"];
    bed.helm_with_ok(&[], &[&install[..], &values[..], &["--wait", "--timeout", "60s"]].concat(), None);
}

/// (revision, status) of every revision of acme.
fn acme_history(bed: &Bed) -> Vec<(u64, String)> {
    let out = bed.helm_with_ok(&[], &["history", "acme", "--namespace", &bed.ns, "-o", "json"], None);
    let revisions: Value = serde_json::from_str(&out).unwrap();
    revisions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["revision"].as_u64().unwrap(), r["status"].as_str().unwrap().to_string()))
        .collect()
}

fn acme_values_at(bed: &Bed, revision: u64) -> Value {
    let args = ["get", "values", "acme", "--namespace", &bed.ns, "--revision", &revision.to_string(), "-o", "json"];
    serde_json::from_str(&bed.helm_with_ok(&[], &args, None)).unwrap()
}

/// The bed's acme policy without its value rules: what an operator who never read the
/// vendor's notes would run.
fn policy_without_value_rules(bed: &Bed) -> String {
    let text = std::fs::read_to_string(acme_policy()).unwrap();
    let start = text.find("\nvalues:").expect("the acme policy has value rules");
    let end = text[start + 1..].find("\n\n").map_or(text.len(), |e| start + 1 + e);
    let path = bed.env.dir().join("acme-without-value-rules.yaml");
    std::fs::write(&path, format!("{}{}", &text[..start], &text[end..])).unwrap();
    path.display().to_string()
}

/// A refused plan changes nothing: not the release, not its ledger.
fn refused(bed: &Bed, args: &[&str]) -> Value {
    let (stdout, stderr) = bed.run_expect(&[args, &["--yes", "--snapshot-taken", "-o", "json"]].concat(), 3);
    assert_eq!(acme_history(bed), [(1, "deployed".to_string())], "{}: {stdout}{stderr}", bed.version);
    assert!(
        bed.get("v1", "configmaps", "helm-safe-upgrade.acme").is_none_or(|cm| !cm.to_string().contains("\"lock\":{"))
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document");
    report["refused"].clone()
}

fn the_preflight_refuses_what_helm_would_refuse_before_any_change(version: HelmVersion) {
    let bed = Bed::new(version);
    install_acme_380(&bed);
    // Without the rename, 4.0.0's schema rejects the postgres.host carried from 3.8.0: the
    // whole plan is refused at hop 2, before hop 1 changed anything.
    let policy = policy_without_value_rules(&bed);
    let upgrade = ["acme", "--to", "4.1.0", "--chart", "demo/acme", "--set", "redis.host=redis.acme.svc"];
    let why = refused(&bed, &[&upgrade[..], &["--policy", &policy]].concat());
    assert_eq!(why["rule"], "values-schema", "{version}: {why}");
    let message = why["message"].as_str().unwrap();
    assert!(
        message.starts_with("hop 2 (3.9.0 → 4.0.0): acme 4.0.0's values.schema.json rejects"),
        "{version}: {message}"
    );
    assert!(message.contains("- at '/postgres': additional properties 'host' not allowed"), "{version}: {message}");

    // 4.2.0 needs a value no rule names: its template fails, so the plan is refused.
    let policy = acme_policy();
    let upgrade = ["acme", "--to", "4.2.0", "--chart", "demo/acme", "--set", "redis.host=redis.acme.svc"];
    let why = refused(&bed, &[&upgrade[..], &["--policy", &policy]].concat());
    assert_eq!(why["rule"], "render", "{version}: {why}");
    let message = why["message"].as_str().unwrap();
    assert!(message.starts_with("hop 4 (4.1.0 → 4.2.0): acme 4.2.0 does not render"), "{version}: {message}");
    assert!(message.contains("acme 4.2.0 needs tls.secretName"), "{version}: {message}");
    let text = why.to_string();
    assert!(!text.contains("hunter2") && !text.contains("db.prod.internal"), "{version}: {text}");
}
both_helms!(preflight_refusals, super::the_preflight_refuses_what_helm_would_refuse_before_any_change);

/// The part of `--plan --diff`'s table from the preflight's heading on.
fn checked_section(table: &str) -> String {
    let start = table.find("checked: ").unwrap_or_else(|| panic!("no preflight section:\n{table}"));
    let end = table[start..].find("\nwarnings").map_or(table.len(), |e| start + e);
    table[start..end].trim_end().to_string()
}

fn the_plan_shows_every_hop_rendered_and_the_walk_deploys_it(version: HelmVersion) {
    let bed = Bed::new(version);
    install_acme_380(&bed);
    let policy = acme_policy();
    let upgrade =
        ["acme", "--to", "4.1.0", "--chart", "demo/acme", "--policy", &policy, "--set", "redis.host=redis.acme.svc"];
    let (table, debug) = bed.run_expect(&[&upgrade[..], &["--plan", "--diff", "--debug"]].concat(), 0);
    insta::assert_snapshot!("acme_plan_diff", checked_section(&table));
    // Each hop rendered offline (no acme before 4.3.0 calls `lookup`), told the cluster's
    // Kubernetes version and API versions.
    for to in ["3.9.0", "4.0.0", "4.1.0"] {
        let purpose = format!("(render acme at {to} (preflight))");
        let line = debug.lines().find(|l| l.ends_with(&purpose)).unwrap_or_else(|| panic!("{version}: {debug}"));
        assert!(line.contains(" template --is-upgrade --no-hooks --kube-version=v1."), "{version}: {line}");
        assert!(line.contains(" --api-versions=apps/v1/Deployment "), "{version}: {line}");
    }
    let (stdout, _) = bed.run_expect(&[&upgrade[..], &["--plan", "--diff", "-o", "json"]].concat(), 0);
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(!stdout.contains("hunter2") && !stdout.contains("aHVudGVyMg=="), "{version}: {stdout}");
    let hop = |i: usize| plan["hops"][i]["check"].clone();
    // Each hop's values as the operator may see them: the rename carried, the secret
    // masked. (Kept out of the ledger, below.)
    assert_eq!(
        hop(0)["values_view"],
        serde_json::json!({"database": {"host": "db.prod.internal"}, "postgres": {"password": "***"}, "redis": {"host": "redis.acme.svc"}}),
        "{version}"
    );
    assert_eq!(
        hop(0)["values_keys"],
        serde_json::json!(["database.host", "postgres.password", "redis.host"]),
        "{version}"
    );
    assert_eq!(
        hop(2)["changes"]["manifests"]["added"],
        serde_json::json!([{"kind": "Service", "name": "acme-metrics"}])
    );
    assert_eq!(
        hop(2)["changes"]["manifests"]["removed"],
        serde_json::json!([{"kind": "ConfigMap", "name": "acme-legacy"}])
    );

    // Without the preflight the plan says so, in place of the checks.
    let (table, _) = bed.run_expect(&[&upgrade[..], &["--plan", "--no-preflight"]].concat(), 0);
    assert!(table.contains("\nnot rendered: --no-preflight: no hop was rendered before the first change\n"), "{table}");
    assert!(!table.contains("checked: "), "{version}: {table}");

    // The walk, with --diff=full, held after hop 1's verify (the policy's procedure sleeps
    // there) so that the ledger is read while it holds the plan.
    let held = policy_with_a_hold(&bed);
    let walk =
        ["acme", "--to", "4.1.0", "--chart", "demo/acme", "--policy", &held, "--set", "redis.host=redis.acme.svc"];
    let run = bed.spawn(&[&walk[..], &["--diff=full", "--yes", "--snapshot-taken"]].concat());
    let record = wait_for_acme_ledger(&bed, |r| r["in_progress"]["step"] == 2);
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(0), "{version}: {stdout}\n{stderr}");
    assert!(stderr.contains("checked: every hop rendered by helm"), "{version}: {stderr}");
    assert!(stderr.contains("acme, Deployment (apps) has changed:"), "{version}: the full diff: {stderr}");
    let out = format!("{stdout}{stderr}");
    assert!(!out.contains("hunter2") && !out.contains("aHVudGVyMg=="), "{version}: {out}");
    assert_eq!(acme_history(&bed).len(), 4, "{version}");
    // The ledger holds each hop's check as the plan showed it: the chart's and the values'
    // digests and the values' keys, never a value (not even an ordinary one), and the
    // --diff summary without the unified diff, which quotes rendered manifests.
    let kept = &record["in_progress"]["plan"]["hops"];
    for i in 0..3 {
        let check = &kept[i]["check"];
        for field in ["chart_digest", "values_digest", "values_keys"] {
            assert_eq!(check[field], hop(i)[field], "{version}: hop {}'s {field} in the ledger: {record}", i + 1);
        }
        assert_eq!(check["changes"]["manifests"], hop(i)["changes"]["manifests"], "{version}: hop {}", i + 1);
        assert!(check["changes"].get("unified").is_none(), "{version}: hop {}: {check}", i + 1);
    }
    let text = record.to_string();
    for value in ["hunter2", "aHVudGVyMg==", "db.prod.internal", "redis.acme.svc"] {
        assert!(!text.contains(value), "{version}: {value} in the ledger: {text}");
    }
    // Each hop deployed the values whose digest the plan showed; the rename carried the
    // host to its new key, and the old key is gone.
    for i in 0..3 {
        let deployed = acme_values_at(&bed, i as u64 + 2);
        assert_eq!(
            Value::from(helm_safe_upgrade::digest::json_sha256(&deployed)),
            hop(i)["values_digest"],
            "{version}: hop {}: {deployed}",
            i + 1
        );
    }
    let last = acme_values_at(&bed, 4);
    assert_eq!(last["database"]["host"], "db.prod.internal", "{version}: {last}");
    assert!(last["postgres"].get("host").is_none(), "{version}: {last}");
    let d = bed.get("apps/v1", "deployments", "acme").expect("Deployment acme");
    assert_eq!(env_value(&d, "ACME_DATABASE_HOST").as_deref(), Some("db.prod.internal"), "{version}");
    let ledger = bed.get("v1", "configmaps", "helm-safe-upgrade.acme").expect("the ledger").to_string();
    assert!(!ledger.contains("hunter2") && !ledger.contains("db.prod.internal"), "{version}: {ledger}");

    // A rollback's hop is not rendered: its plan (back to the snapshot taken at 3.8.0)
    // says so, in place of the checks.
    let back = ["acme", "--to", "3.8.0", "--policy", &policy, "--plan"];
    let (table, _) = bed.run_env_expect(&[("HELM_PLUGIN_NAME", "safe-rollback")], &back, 0);
    assert!(table.contains("\nnot rendered: a rollback's hop is not rendered before it starts\n"), "{table}");
    assert!(!table.contains("checked: "), "{version}: {table}");
    let (stdout, _) =
        bed.run_env_expect(&[("HELM_PLUGIN_NAME", "safe-rollback")], &[&back[..], &["-o", "json"]].concat(), 0);
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(plan["not_rendered"], "a rollback's hop is not rendered before it starts", "{version}: {stdout}");
    assert!(plan["hops"].as_array().unwrap().iter().all(|h| h.get("check").is_none()), "{version}: {stdout}");
}
both_helms!(preflight_and_walk, super::the_plan_shows_every_hop_rendered_and_the_walk_deploys_it);

/// A copy of the bed's acme policy whose `upgrade` procedure sleeps after its verify: a
/// run holds there long enough for a test to read the ledger.
fn policy_with_a_hold(bed: &Bed) -> String {
    let text = std::fs::read_to_string(acme_policy()).unwrap();
    let old = "  upgrade:\n    # \"Plan maintenance window";
    let steps = "    steps:\n      - deploy: {}\n      - verify: {}\n";
    let start = text.find(old).expect("the acme policy's upgrade procedure");
    let at = start + text[start..].find(steps).expect("its steps") + steps.len();
    let hold = "      - run: {name: hold, argv: [sleep, \"2\"]}\n";
    let path = bed.env.dir().join("acme-with-a-hold.yaml");
    std::fs::write(&path, format!("{}{hold}{}", &text[..at], &text[at..])).unwrap();
    path.display().to_string()
}

/// Poll acme's ledger record until `ready` holds (or fail after 60 s).
fn wait_for_acme_ledger(bed: &Bed, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let record = bed.get("v1", "configmaps", "helm-safe-upgrade.acme").map(|cm| {
            serde_json::from_str::<Value>(cm["data"]["ledger"].as_str().expect("data.ledger")).expect("JSON")
        });
        if let Some(record) = record.filter(|r| ready(r)) {
            return record;
        }
        assert!(std::time::Instant::now() < deadline, "{}: timed out waiting for acme's ledger", bed.version);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// What the preflight's dry run against the cluster sees that `helm template` does not.

/// acme 4.3.0 adds a label to its Deployment's selector, which an upgrade cannot change,
/// and its templates look the live Deployment up (`lookup`) to fail while it has the old
/// one. `helm template` has no cluster: `lookup` finds nothing and 4.3.0 renders. The
/// preflight renders with `helm upgrade --dry-run=server`, which reads the cluster as the
/// upgrade would: the plan is refused before anything changes, as the upgrade itself
/// would have been refused at that hop.
fn the_preflight_sees_what_only_the_cluster_shows(version: HelmVersion) {
    let bed = Bed::new(version);
    let ns = bed.ns.as_str();
    let values = ["--set", "redis.host=redis.acme.svc", "--set", "tls.secretName=acme-tls"];
    let install = ["install", "acme", "demo/acme", "--version", "4.2.0", "--namespace", ns, "--create-namespace"];
    bed.helm_with_ok(&[], &[&install[..], &values[..], &["--wait", "--timeout", "60s"]].concat(), None);
    // Offline, 4.3.0 renders with these values, `--is-upgrade` or not.
    let template = ["template", "acme", "demo/acme", "--version", "4.3.0", "--namespace", ns, "--is-upgrade"];
    let rendered = bed.helm_with_ok(&[], &[&template[..], &values[..]].concat(), None);
    assert!(rendered.contains("app.kubernetes.io/component: server"), "{version}: {rendered}");

    let upgrade = ["acme", "--to", "4.3.0", "--chart", "demo/acme", "--policy", &acme_policy()];
    let why = refused(&bed, &upgrade);
    assert_eq!(why["rule"], "render", "{version}: {why}");
    let message = why["message"].as_str().unwrap();
    assert!(message.starts_with("hop 1 (4.2.0 → 4.3.0): acme 4.3.0 does not render"), "{version}: {message}");
    assert!(message.contains("acme 4.3.0 changes the selector of Deployment acme"), "{version}: {message}");
    // How (`--debug` names every helm command): 4.3.0, whose templates call `lookup`, is
    // rendered on the cluster, not offline.
    let (_, debug) = bed.run_expect(&[&upgrade[..], &["--plan", "--debug"]].concat(), 3);
    let ran = |words: &str, purpose: &str| debug.lines().any(|l| l.contains(words) && l.ends_with(purpose));
    assert!(ran(" upgrade --dry-run=server -o json ", "(render acme at 4.3.0 (preflight))"), "{version}: {debug}");
    assert!(!ran(" template ", "(render acme at 4.3.0 (preflight))"), "{version}: {debug}");
    // Without the preflight the plan has nothing to refuse it with.
    let (table, _) = bed.run_expect(&[&upgrade[..], &["--plan", "--no-preflight"]].concat(), 0);
    assert!(table.contains("not rendered: --no-preflight"), "{version}: {table}");
    // helm's own upgrade fails the same way, at its render, before it applies anything.
    let by_hand = ["upgrade", "acme", "demo/acme", "--version", "4.3.0", "--namespace", ns, "--reuse-values"];
    let out = bed.helm_with(&[], &by_hand, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("changes the selector"), "{version}: {stderr}");
    assert_eq!(acme_history(&bed), [(1, "deployed".to_string())], "{version}");
}
both_helms!(preflight_sees_the_cluster, super::the_preflight_sees_what_only_the_cluster_shows);

// ---------------------------------------------------------------------------------------
// `--diff=full` against real renders: the unified diff, masked.

/// bsr at 1.0.4 with its database password in its Secret and, as operators do for a
/// sidecar, again in a plain env var (`extraEnv`, a key that does not look secret).
const BSR_WITH_A_COPIED_PASSWORD: &str =
    "postgres:\n  password: Tr0ub4dor-and-3\nextraEnv:\n  - name: SIDECAR_DB_PASSWORD\n    value: Tr0ub4dor-and-3\n";

fn the_full_diff_shows_each_hop_and_masks_every_secret(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", BSR_WITH_A_COPIED_PASSWORD);
    // The plan rotates the password: the Secret's data changes with the hop.
    let plan =
        ["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--set", "postgres.password=C0rrect-Horse-Battery", "--plan"];
    let (stdout, stderr) = bed.run_expect(&[&plan[..], &["--diff=full"]].concat(), 0);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secrets = ["Tr0ub4dor-and-3", "C0rrect-Horse-Battery"];
    let leaked = |text: &str| secrets.iter().any(|s| text.contains(s) || text.contains(&b64(s)));
    assert!(!leaked(&stdout) && !leaked(&stderr), "{version}: a secret leaked:\n{stdout}\n{stderr}");
    // helm-diff's shape, under the hop's summary: a header per resource, then `-`/`+`
    // lines with three unchanged lines around each change.
    let shown = |text: &str, lines: &[&str]| {
        let all: Vec<&str> = text.lines().map(str::trim_start).collect();
        all.windows(lines.len()).any(|w| w == lines)
    };
    let expect = |text: &str, lines: &[&str]| assert!(shown(text, lines), "{version}: no {lines:?} in:\n{text}");
    expect(&stdout, &["bsr-server, Deployment (apps) has changed:"]);
    expect(&stdout, &["-         image: registry.example/bufbuild/bufd:1.0.4"]);
    expect(&stdout, &["+         image: registry.example/bufbuild/bufd:1.1.9"]);
    // The Secret's data changed, and shows only that it did; its other entry is masked.
    expect(&stdout, &["bsr-postgres, Secret (v1) has changed:"]);
    expect(&stdout, &["-   password: --------", "+   password: ++++++++", "user: \"***\""]);
    // The env var holding the password that the values hold under `postgres.password` is
    // masked where it is rendered, in the Deployment.
    expect(&stdout, &["- name: SIDECAR_DB_PASSWORD", "value: \"***\""]);
    // -o json carries the same unified diff, masked alike.
    let (stdout, _) = bed.run_expect(&[&plan[..], &["--diff=full", "-o", "json"]].concat(), 0);
    assert!(!leaked(&stdout), "{version}: {stdout}");
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let unified = plan["hops"][0]["check"]["changes"]["unified"].as_str().expect("the unified diff");
    expect(unified, &["-   password: --------", "+   password: ++++++++"]);
    expect(unified, &["- name: SIDECAR_DB_PASSWORD", "value: \"***\""]);
}
both_helms!(full_diff, super::the_full_diff_shows_each_hop_and_masks_every_secret);
