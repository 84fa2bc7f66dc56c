//! `helm safe-upgrade RELEASE --to VERSION` end to end: the real helm 3.19.0 and 4.1.4
//! against the Kubernetes API stand-in (or the cluster of HSU_E2E_KUBECONFIG), charts from
//! the loopback repository.

#[path = "e2e/bed.rs"]
mod bed;

use bed::{Bed, VALUES, yaml_to_json};
use kube_standin::testing::HelmVersion;
use serde_json::Value;

fn three_hops_carry_values_exactly(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes", "-o", "json"], 0);
    let report: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    assert_eq!(report["result"], "completed", "{stdout}");
    assert_eq!(report["at"], "1.3.0");
    let path: Vec<&str> =
        report["plan"]["hops"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(path, ["1.1.9", "1.2.6", "1.3.0"]);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9", "bsr-1.2.6", "bsr-1.3.0"]);
    let statuses: Vec<String> = bed.history().into_iter().map(|(_, s, _)| s).collect();
    assert_eq!(statuses, ["superseded", "superseded", "superseded", "deployed"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "values are exactly what they were");
    assert_eq!(bed.server_version_label(), "1.3.0");
    // Every step reported, each with a duration.
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6, "{stdout}");
    assert!(steps.iter().all(|s| s["outcome"] == "ok" && s["duration_ms"].is_u64()));
    // The backup is private and holds the values as they were.
    let backup = std::path::PathBuf::from(report["backup"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o700);
    for file in ["values.json", "manifest.yaml", "metadata.json"] {
        let meta = std::fs::metadata(backup.join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(backup.join("values.json")).unwrap()).unwrap();
    assert_eq!(saved, yaml_to_json(VALUES));
    // No secret value reaches the output.
    assert!(!stdout.contains("s3cret-value") && !stderr.contains("s3cret-value"), "a secret leaked:\n{stderr}");
    // A second run is a no-op and says so.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--yes"], 0);
    assert!(stdout.contains("1.3.0"), "{stdout}");
    assert_eq!(bed.history().len(), 4);
}
both_helms!(three_hops, super::three_hops_carry_values_exactly);

/// A policy's `run` steps read the cluster the way operators do, a jsonpath and a
/// go-template, and pass JSON: each written with doubled braces in the policy, each
/// reaching its program (no shell between) with single ones.
fn commands_get_literal_braces(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let steps = concat!(
        "      - deploy: {}\n",
        "      - verify: {}\n",
        "      - run: {name: jsonpath, argv: [kubectl, --namespace, \"{namespace}\", get, deployment, bsr-server,\n",
        "                                     \"-o=jsonpath=by jsonpath: {{.metadata.name}}\"]}\n",
        "      - run: {name: go-template, argv: [kubectl, --namespace, \"{namespace}\", get, deployment, bsr-server,\n",
        "                                        \"-o=go-template=by go-template: {{{{.metadata.name}}}}\"]}\n",
        "      - run: {name: json, argv: [printf, \"%s\\n\", '{{\"release\": \"{release}\"}}']}\n",
    );
    let policy = bed.policy_with_rolling_steps(steps);
    let (stdout, stderr) = bed
        .run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", policy.to_str().unwrap(), "--yes"], 0);
    let output = format!("{stdout}{stderr}");
    // The plan shows each command as it will run.
    assert!(output.contains("get deployment bsr-server '-o=jsonpath=by jsonpath: {.metadata.name}'"), "{output}");
    assert!(output.contains("'-o=go-template=by go-template: {{.metadata.name}}'"), "{output}");
    // And each ran so: kubectl read the Deployment's name through both templates.
    assert!(output.contains("by jsonpath: bsr-server"), "{output}");
    assert!(output.contains("by go-template: bsr-server"), "{output}");
    assert!(output.contains(r#"{"release": "bsr"}"#), "{output}");
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.1.9"]);
}
both_helms!(literal_braces, super::commands_get_literal_braces);

fn refusals_change_nothing(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let before = bed.history();
    // A major: refused by the policy, with the supported alternative.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "2.0.0", "--chart", "demo/bsr", "--yes", "-o", "json"], 3);
    let refusal: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(refusal["refused"]["rule"], "major");
    assert_eq!(refusal["refused"]["supported"], "upgrade to 1.4.1, the newest 1.x");
    // A chart of another name.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/coder", "--yes"], 2);
    assert!(stderr.contains("is chart \"coder\", but release bsr runs chart \"bsr\""), "{stderr}");
    // A version the source does not offer.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.9", "--chart", "demo/bsr", "--yes"], 2);
    assert!(stderr.contains("1.2.9 is not available") && stderr.contains("1.2.0, 1.2.6"), "{stderr}");
    // An unknown release.
    let (_, stderr) = bed.run_expect(&["nope", "--to", "1.2.6", "--chart", "demo/bsr", "--yes"], 2);
    assert!(stderr.contains(&format!("release \"nope\" not found in namespace \"{}\"", bed.ns)), "{stderr}");
    // No terminal and no --yes: refused instead of hanging on a prompt.
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr"], 2);
    assert!(stderr.contains("stdin is not a terminal") && stderr.contains("--yes"), "{stderr}");
    // An -f file helm cannot read as values: the operator's input, named, exit 2 (found
    // by helm's merge of the values beside the release's read, before anything changed).
    let broken = bed.env.dir().join("broken-values.yaml");
    std::fs::write(&broken, "replicaCount: [1, 2\n").unwrap();
    let broken = broken.to_str().unwrap();
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "-f", broken], 2);
    assert!(
        stderr.contains(&format!("-f {broken}: helm cannot read it as values; nothing was changed"))
            && stderr.contains("did not find expected")
            && stderr.contains("hint: fix the file"),
        "{stderr}"
    );
    // And so without the preflight, rather than the first hop's `helm upgrade` failing.
    let args = ["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "--no-preflight", "-f", broken, "--debug"];
    let (_, stderr) = bed.run_expect(&args, 2);
    assert!(stderr.contains(&format!("-f {broken}: helm cannot read it as values; nothing was changed")), "{stderr}");
    assert!(!stderr.contains(" upgrade ") && !stderr.contains("hop 1"), "a hop started: {stderr}");
    // --plan prints the plan and changes nothing.
    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"], 0);
    assert!(stdout.contains("1.0.4  1.1.9  minor"), "{stdout}");
    assert_eq!(bed.history(), before, "a refusal left a new revision");
    assert_eq!(bed.user_values(), yaml_to_json(VALUES));
}
both_helms!(refusals, super::refusals_change_nothing);

fn fast_path_uses_maintenance_mode_and_leaves_no_override(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    // The policy needs a snapshot and has no command: unattended, that is refused up front.
    let (stdout, _) =
        bed.run_expect(&["bsr", "--to", "1.4.1", "--fast-path", "--chart", "demo/bsr", "--yes", "-o", "json"], 3);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap()["refused"]["rule"], "snapshot");
    assert_eq!(bed.history().len(), 1);

    // The preflight renders the maintenance deploy of 1.0.4 as well as the hop's target.
    let fast = ["bsr", "--to", "1.4.1", "--fast-path", "--snapshot-taken", "--chart", "demo/bsr"];
    let (stdout, _) = bed.run_expect(&[&fast[..], &["--plan", "-o", "json"]].concat(), 0);
    let planned: Value = serde_json::from_str(&stdout).unwrap();
    let check = &planned["hops"][0]["check"];
    let other = &check["other_deploys"][0];
    assert_eq!((&other["step"], &other["version"]), (&Value::from(0), &Value::from("1.0.4")), "{check}");

    bed.run_expect(&[&fast[..], &["--yes"]].concat(), 0);
    assert_eq!(bed.charts_deployed(), ["bsr-1.0.4", "bsr-1.0.4", "bsr-1.4.1"]);
    let values_at = |revision: &str| -> Value {
        serde_json::from_str(&bed.env.helm_ok(&[
            "get",
            "values",
            "bsr",
            "--namespace",
            &bed.ns,
            "--revision",
            revision,
            "-o",
            "json",
        ]))
        .unwrap()
    };
    let during = values_at("2");
    assert_eq!(during["maintenance"], true, "revision 2 ran in maintenance mode");
    // Each deploy deployed the values whose digest the plan showed.
    let digest = |values: &Value| Value::from(helm_safe_upgrade::digest::json_sha256(values));
    assert_eq!(digest(&during), other["values_digest"], "{during}");
    assert_eq!(digest(&values_at("3")), check["values_digest"]);
    assert_eq!(bed.user_values(), yaml_to_json(VALUES), "maintenance is gone at the end");
    let env = bed.server()["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let maintenance =
        env.as_array().unwrap().iter().find(|e| e["name"] == "BSR_MAINTENANCE").map(|e| e["value"].clone());
    assert_eq!(maintenance, Some(Value::from("false")), "the server left maintenance mode: {env}");
    assert_eq!(bed.server_version_label(), "1.4.1");
}
both_helms!(fast_path, super::fast_path_uses_maintenance_mode_and_leaves_no_override);

fn a_release_without_values_leaves_maintenance_with_none(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", "");
    // The target's deploy is given no value at all: helm would keep the maintenance
    // deploy's `maintenance: true` (it keeps the old values when the new ones are empty)
    // unless told to record exactly the values given.
    let fast = ["bsr", "--to", "1.4.1", "--fast-path", "--snapshot-taken", "--chart", "demo/bsr", "--yes"];
    for run in [&fast[..], &[&fast[..], &["--no-preflight"]].concat()] {
        bed.run_expect(run, 0);
        assert_eq!(bed.user_values(), Value::Null, "{run:?}: no values, as installed");
        let env = bed.server()["spec"]["template"]["spec"]["containers"][0]["env"].clone();
        let maintenance =
            env.as_array().unwrap().iter().find(|e| e["name"] == "BSR_MAINTENANCE").map(|e| e["value"].clone());
        assert_eq!(maintenance, Some(Value::from("false")), "{run:?}: the server left maintenance mode: {env}");
        bed.env.helm_ok(&["rollback", "bsr", "1", "--namespace", &bed.ns, "--wait"]);
    }
}
both_helms!(no_values, super::a_release_without_values_leaves_maintenance_with_none);

fn values_with_yaml_line_breaks_are_deployed_as_they_are(version: HelmVersion) {
    let bed = Bed::new(version);
    // U+0085, U+2028 and U+2029 break lines in YAML 1.1, which helm reads values files
    // as, and U+007F-U+009F are refused by it.
    let note = "a\u{85}b\u{2028}c\u{2029}d\u{7f}e\u{80}f";
    bed.install("bsr", "1.0.4", r#"{"replicaCount": 1, "note": "a\u0085b\u2028c\u2029d\u007fe\u0080f"}"#);
    assert_eq!(bed.user_values()["note"], note, "installed as written");
    let extra = bed.env.dir().join("extra.yaml");
    std::fs::write(&extra, "extra: x\n").unwrap();
    // With -f, helm's merge is printed by the tool's own chart; the walk's values files
    // carry the note to each hop.
    bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "-f", extra.to_str().unwrap()], 0);
    assert_eq!(bed.user_values(), serde_json::json!({"replicaCount": 1, "note": note, "extra": "x"}));
}
both_helms!(yaml_line_breaks, super::values_with_yaml_line_breaks_are_deployed_as_they_are);

/// Which render each chart's hop gets: offline, unless the chart may read what only the
/// cluster answers as its upgrade will. The stand-in's Kubernetes version
/// (`v1.33.0+standin`) is one `--kube-version` cannot say exactly (helm 3 drops
/// `+standin`); a cluster's plain `v1.33.1` is.
fn each_chart_is_rendered_where_what_it_reads_is(version: HelmVersion) {
    let bed = Bed::new(version);
    let said: Value = serde_json::from_slice(&bed.kubectl(&["version", "-o", "json"], None).stdout).unwrap();
    let field = |name: &str| said["serverVersion"][name].as_str().unwrap().to_string();
    let kube_version = helm_safe_upgrade::kube::ServerVersion {
        git_version: field("gitVersion"),
        major: field("major"),
        minor: field("minor"),
    };
    let told_exactly =
        helm_safe_upgrade::helm::Capabilities { kube_version, api_versions: vec![] }.kube_version_told_exactly();
    assert!(bed.standin().is_none() || !told_exactly, "the stand-in's version is not a plain one");
    let (charts, sources) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let templates = [
        ("plain", "a: b"),
        ("kubever", "minor: {{ .Capabilities.KubeVersion.Minor | quote }}"),
        ("tplvalues", "extra: {{ tpl .Values.extra . | quote }}"),
    ];
    for (name, data) in templates {
        for chart_version in ["1.0.0", "1.1.0"] {
            let root = sources.path().join(format!("{name}-{chart_version}"));
            std::fs::create_dir_all(root.join("templates")).unwrap();
            std::fs::write(
                root.join("Chart.yaml"),
                format!("apiVersion: v2\nname: {name}\nversion: {chart_version}\n"),
            )
            .unwrap();
            std::fs::write(root.join("values.yaml"), "extra: x\n").unwrap();
            let cm = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}\ndata:\n  {data}\n"
            );
            std::fs::write(root.join("templates/cm.yaml"), cm).unwrap();
            bed.env.helm_ok(&["package", root.to_str().unwrap(), "-d", charts.path().to_str().unwrap()]);
        }
    }
    let dir = charts.path().to_str().unwrap();
    let mentions_lookup = bed.values_file("extra: '{{ lookup \"v1\" \"Namespace\" \"\" \"default\" | len }}'\n");
    let mentions_lookup = mentions_lookup.to_str().unwrap();
    for (name, extra, on_the_cluster) in [
        ("plain", &[][..], false),
        ("kubever", &[][..], !told_exactly),
        ("tplvalues", &[][..], false),
        ("tplvalues", &["-f", mentions_lookup][..], true),
    ] {
        let archive = format!("{dir}/{name}-1.0.0.tgz");
        if bed.env.helm(&["status", name, "--namespace", &bed.ns]).status.code() != Some(0) {
            bed.env.helm_ok(&["install", name, &archive, "--namespace", &bed.ns, "--create-namespace", "--wait"]);
        }
        let args = [&[name, "--to", "1.1.0", "--chart", dir, "--plan", "--debug"][..], extra].concat();
        let (_, debug) = bed.run_expect(&args, 0);
        let purpose = format!("(render {name} at 1.1.0 (preflight))");
        let line = debug.lines().find(|l| l.ends_with(&purpose)).unwrap_or_else(|| panic!("{version}: {debug}"));
        let how = if on_the_cluster { " upgrade --dry-run=server " } else { " template --is-upgrade --no-hooks " };
        assert!(line.contains(how), "{version} {name} {extra:?}: {line}");
    }
}
both_helms!(where_rendered, super::each_chart_is_rendered_where_what_it_reads_is);

// ---------------------------------------------------------------------------------------
// The migration hook Job as it runs on a cluster: for seconds, then done or failed, with
// a pod and a log (what a live view of `helm upgrade` shows). `migration.runSeconds`,
// `exitCode` and `log` make the stand-in's pod (or the bed's busybox) run that way.

/// The pod of `job` (one: backoffLimit 0), after helm returned.
fn only_pod(bed: &Bed, job: &str) -> Value {
    let pods = bed.job_pods(job);
    assert_eq!(pods.len(), 1, "{}: pods of {job}: {pods:?}", bed.version);
    pods.into_iter().next().unwrap()
}

fn a_plain_upgrade_waits_for_a_migration_that_runs(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let ns = bed.ns.as_str();
    let started = std::time::Instant::now();
    let upgrade = ["upgrade", "bsr", "demo/bsr", "--version", "1.1.9", "--namespace", ns, "--reuse-values"];
    bed.helm_with_ok(&[], &[&upgrade[..], &["--set", "migration.runSeconds=3", "--timeout", "120s"]].concat(), None);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(3), "{version}: helm did not wait for the hook: {took:?}");
    let job = bed.get("batch/v1", "jobs", "bsr-migrate").expect("the hook Job is kept");
    let complete = job["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Complete" && c["status"] == "True");
    assert!(complete && job["status"]["succeeded"] == 1, "{version}: {}", job["status"]);
    let pod = only_pod(&bed, "bsr-migrate");
    assert_eq!(pod["status"]["phase"], "Succeeded", "{version}: {}", pod["status"]);
    assert_eq!(pod["metadata"]["labels"]["app.kubernetes.io/version"], "1.1.9", "{version}");
    assert_eq!(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0, "{version}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}");
}
both_helms!(slow_migration, super::a_plain_upgrade_waits_for_a_migration_that_runs);

fn a_migration_that_fails_after_running_fails_the_upgrade_and_leaves_its_log(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let ns = bed.ns.as_str();
    let lines = "applying 0042_add_index\nERROR: relation \"idx\" already exists\nmigration failed\n";
    let values = bed.env.dir().join("failing-migration.yaml");
    let log = lines.trim_end().replace('\n', "\n    ");
    std::fs::write(&values, format!("migration:\n  runSeconds: 1\n  exitCode: 1\n  log: |-\n    {log}\n")).unwrap();
    let upgrade = ["upgrade", "bsr", "demo/bsr", "--version", "1.1.9", "--namespace", ns, "--reuse-values"];
    let out =
        bed.helm_with(&[], &[&upgrade[..], &["-f", values.to_str().unwrap(), "--timeout", "120s"]].concat(), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{version}: the upgrade succeeded");
    assert!(stderr.contains("pre-upgrade hooks failed") && stderr.contains("bsr-migrate"), "{version}: {stderr}");
    assert_eq!(bed.history().last().unwrap().1, "failed", "{version}");
    assert_eq!(bed.server_version_label(), "1.0.4", "{version}: nothing was upgraded after the hook failed");

    let pod = only_pod(&bed, "bsr-migrate");
    assert_eq!(pod["status"]["phase"], "Failed", "{version}: {}", pod["status"]);
    assert_eq!(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 1, "{version}");
    // The log, read as an operator would, with the real kubectl (a cluster's pod prints
    // the bed's "standing in for" line first).
    let kubectl = |args: &[&str]| {
        let out = bed.kubectl(&[&["--namespace", ns], args].concat(), None);
        assert!(out.status.success(), "{version}: kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let whole = kubectl(&["logs", "job/bsr-migrate"]);
    assert!(whole.ends_with(lines), "{version}: {whole:?}");
    let name = pod["metadata"]["name"].as_str().unwrap();
    assert_eq!(kubectl(&["logs", name, "--tail=2"]), "ERROR: relation \"idx\" already exists\nmigration failed\n");
}
both_helms!(failing_migration, super::a_migration_that_fails_after_running_fails_the_upgrade_and_leaves_its_log);

/// The same failing migration in a hop of the tool: while the hop fails, the operator is
/// shown the failing hook Job by name, why it failed, and its last log lines (what they
/// would otherwise open a second terminal for), then the hop is brought back.
fn a_failing_hook_job_is_shown_with_its_reason_and_last_log_lines(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let lines = "applying 0042_add_index\nERROR: relation \"idx\" already exists\nmigration failed\n";
    let values = bed.env.dir().join("failing-migration.yaml");
    let log = lines.trim_end().replace('\n', "\n    ");
    std::fs::write(&values, format!("migration:\n  runSeconds: 1\n  exitCode: 1\n  log: |-\n    {log}\n")).unwrap();
    let policy = bed::bed_policy();
    let (_, stderr) = bed.run_expect(
        &["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--policy", &policy, "--yes", "-f", values.to_str().unwrap()],
        4,
    );
    let failed = stderr
        .find("hook Job bsr-migrate failed: BackoffLimitExceeded")
        .unwrap_or_else(|| panic!("{version}: the failing Job, by name, with its reason:\n{stderr}"));
    let shown = &stderr[failed..];
    assert!(shown.contains("\n  last lines of `kubectl logs bsr-migrate-"), "{version}: {stderr}");
    let tail = "\n    ERROR: relation \"idx\" already exists\n    migration failed\n";
    assert!(shown.contains(tail), "{version}: the Job's last log lines:\n{stderr}");
    // Said while the hop fails, before the run brings the release back.
    let hop_failed = stderr.find("hop 1 failed").unwrap_or_else(|| panic!("{version}: {stderr}"));
    assert!(failed < hop_failed, "{version}: the Job is shown while the hop runs:\n{stderr}");
    assert_eq!(stderr.matches("hook Job bsr-migrate failed:").count(), 1, "{version}: said once:\n{stderr}");
    assert_eq!(bed.history().last().unwrap().1, "deployed", "{version}: brought back");
    assert_eq!(bed.server_version_label(), "1.0.4", "{version}");
}
both_helms!(failing_hook_job_shown, super::a_failing_hook_job_is_shown_with_its_reason_and_last_log_lines);

/// Two upgrades of a release, then `--plan`: the plan's estimates come from this
/// release's own hops, which the ledger recorded with their work time; the run says how
/// far it is against them.
fn estimates_come_from_the_releases_own_history(version: HelmVersion) {
    let bed = Bed::new(version);
    bed.install("bsr", "1.0.4", VALUES);
    let (_, stderr) = bed.run_expect(&["bsr", "--to", "1.1.9", "--chart", "demo/bsr", "--yes"], 0);
    assert!(stderr.contains("hop 1/1: 1.0.4 → 1.1.9 (rolling)\n"), "no estimate yet:\n{stderr}");
    assert!(stderr.contains("hop 1/1 done in "), "{stderr}");
    let (stdout, stderr) = bed.run_expect(&["bsr", "--to", "1.2.6", "--chart", "demo/bsr", "--yes", "-o", "json"], 0);
    assert!(stderr.contains("hop 1/1: 1.1.9 → 1.2.6 (rolling), expected ~"), "{stderr}");
    assert!(stderr.contains("hop 1/1 done in ") && stderr.contains(" (expected ~"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["plan"]["hops"][0]["estimate"]["basis"], serde_json::json!({"from": "history", "hops": 1}));
    let record = bed.ledger_record().unwrap();
    for hop in record["hops"].as_array().unwrap() {
        assert_eq!(hop["procedure"], "rolling", "{record}");
        assert!(hop["work_ms"].as_u64().unwrap() > 0, "{record}");
    }

    let (stdout, _) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan", "-o", "json"], 0);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    let hop = &plan["hops"][0];
    assert_eq!(hop["estimate"]["basis"], serde_json::json!({"from": "history", "hops": 2}), "{stdout}");
    let (low, expected, high) = (
        hop["estimate"]["low_secs"].as_u64().unwrap(),
        hop["estimate"]["expected_secs"].as_u64().unwrap(),
        hop["estimate"]["high_secs"].as_u64().unwrap(),
    );
    assert!(low <= expected && expected <= high, "{hop}");
    assert_eq!(plan["estimate"]["expected_secs"], expected, "one hop: the total is the hop");
    let (text, _) = bed.run_expect(&["bsr", "--to", "1.3.0", "--chart", "demo/bsr", "--plan"], 0);
    assert!(text.contains("expected time: ~") && text.contains("no downtime"), "{text}");
    assert!(
        text.contains("hop 1 (→ 1.3.0): ~") && text.contains("median of this release's last 2 hops like it"),
        "{text}"
    );
}
both_helms!(estimates_from_history, super::estimates_come_from_the_releases_own_history);
