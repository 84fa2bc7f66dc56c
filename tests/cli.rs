//! The binary as users run it: offline planning for each preset, the JSON contract,
//! exit codes, policy listing, and policy error messages (snapshots).

use std::io::Write;

use assert_cmd::Command;
use serde_json::Value;

const BSR_VERSIONS: &str = "1.0.4,1.1.0,1.1.9,1.2.0,1.2.6,1.3.0";
const BSR_TRAIN: &str = "1.0.4,1.1.0,1.1.9,1.2.0,1.2.6,1.3.0,1.4.2,1.5.0,1.6.1,1.7.0,1.8.3,1.9.0,1.9.3,2.1.0";

fn upgrade() -> Command {
    let mut cmd = Command::cargo_bin("helm-safe-upgrade").unwrap();
    cmd.env_remove("HELM_NAMESPACE").env_remove("HELM_PLUGIN_NAME");
    // The test runner's own colour settings must not reach the tool.
    cmd.env_remove("NO_COLOR").env_remove("HELM_COLOR").env_remove("COLUMNS");
    cmd
}

fn rollback() -> Command {
    let mut cmd = upgrade();
    cmd.env("HELM_PLUGIN_NAME", "safe-rollback");
    cmd
}

fn stdout_of(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(code), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stderr).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{text}"))
}

#[test]
fn bsr_offline_plan_as_a_table() {
    let out = stdout_of(
        upgrade().args(["--from", "1.0.4", "--to", "1.3.0", "--policy", "bsr", "--versions", BSR_VERSIONS, "--plan"]),
        0,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn bsr_offline_plan_as_json_has_the_documented_shape() {
    let out = stdout_of(
        upgrade().args([
            "bsr",
            "--from",
            "1.0.4",
            "--to",
            "1.3.0",
            "--policy",
            "bsr",
            "--versions",
            BSR_VERSIONS,
            "--plan",
            "-o",
            "json",
        ]),
        0,
    );
    let doc = json(&out);
    assert_eq!(doc["direction"], "upgrade");
    assert_eq!(doc["policy"], "bsr");
    assert_eq!(doc["from"], "1.0.4");
    assert_eq!(doc["to"], "1.3.0");
    assert_eq!(doc["strategy"], "sequential");
    assert_eq!(doc["downtime"], false);
    let hops = doc["hops"].as_array().unwrap();
    let path: Vec<&str> = hops.iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(path, ["1.1.9", "1.2.6", "1.3.0"]);
    for hop in hops {
        assert_eq!(hop["kind"], "minor");
        let actions: Vec<&str> =
            hop["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["deploy", "verify"]);
    }
    assert_eq!(doc["alternatives"][0]["strategy"], "fast-path");
    assert!(doc["warnings"].as_array().unwrap().is_empty());
    insta::assert_snapshot!(out);
}

#[test]
fn fast_path_plan_as_json() {
    let out = stdout_of(
        upgrade().args([
            "--from",
            "1.0.4",
            "--to",
            "1.9.3",
            "--fast-path",
            "--policy",
            "bsr",
            "--versions",
            BSR_TRAIN,
            "-o",
            "json",
        ]),
        0,
    );
    let doc = json(&out);
    assert_eq!(doc["strategy"], "fast-path");
    assert_eq!(doc["downtime"], true);
    assert_eq!(
        doc["hops"][0]["steps"][0],
        serde_json::json!({"action": "deploy", "version": "1.0.4", "set": {"maintenance": true}})
    );
}

#[test]
fn major_jump_is_refused_with_exit_3_and_a_json_refusal() {
    let out = stdout_of(
        upgrade().args([
            "--from",
            "1.0.4",
            "--to",
            "2.1.0",
            "--policy",
            "bsr",
            "--versions",
            BSR_TRAIN,
            "--plan",
            "-o",
            "json",
        ]),
        3,
    );
    assert_eq!(
        json(&out),
        serde_json::json!({"refused": {
            "rule": "major",
            "message": "1.0.4 → 2.1.0 crosses a major version; policy bsr refuses major upgrades",
            "supported": "upgrade to 1.9.3, the newest 1.x"
        }})
    );
    let err =
        stderr_of(upgrade().args(["--from", "1.0.4", "--to", "2.1.0", "--policy", "bsr", "--versions", BSR_TRAIN]), 3);
    insta::assert_snapshot!(err);
}

#[test]
fn rollback_mode_from_the_plugin_name_plans_the_bsr_down_migration() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bsr.yaml");
    let preset = stdout_of(upgrade().args(["--show-policy", "bsr"]), 0);
    std::fs::File::create(&policy)
        .unwrap()
        .write_all(format!("{preset}  - version: 1.2.6\n    schema: 240\n    app_version: 2.2.6\n  - version: 1.3.0\n    app_version: 2.3.0\n").as_bytes())
        .unwrap();
    let out = stdout_of(
        rollback().args([
            "bsr",
            "-n",
            "bsr",
            "--from",
            "1.3.0",
            "--to",
            "1.2.6",
            "--policy",
            policy.to_str().unwrap(),
            "--versions",
            BSR_VERSIONS,
        ]),
        0,
    );
    // The temporary folder's name changes from run to run.
    let out = out.replace(&dir.path().display().to_string(), "TMP");
    insta::assert_snapshot!(out);
    // Refused beyond the window, even for a default target from an older minor.
    let err = stderr_of(
        rollback().args([
            "--from",
            "1.3.0",
            "--to",
            "1.1.9",
            "--policy",
            policy.to_str().unwrap(),
            "--versions",
            BSR_VERSIONS,
        ]),
        3,
    );
    assert!(err.contains("rule:      downgrade-window"), "{err}");
}

#[test]
fn rollback_mode_from_the_binary_name() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("helm-safe-rollback");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("helm-safe-upgrade"), &link).unwrap();
    let out = std::process::Command::new(&link)
        .args(["--from", "2.16.0", "--policy", "coder", "--versions", "2.15.1,2.16.0", "-o", "json"])
        .env_remove("HELM_PLUGIN_NAME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(doc["direction"], "rollback");
    assert_eq!(doc["strategy"], "restore");
    assert_eq!(doc["to"], "2.15.1");
}

#[test]
fn every_preset_plans_offline_from_its_catalog_or_a_version_list() {
    for (policy, from, to, versions, hops) in [
        ("bsr", "1.0.4", "1.3.0", BSR_VERSIONS, 3),
        ("sourcegraph", "5.1.8", "6.0.0", "5.1.8,5.2.7,5.3.2,6.0.0", 3),
        ("coder", "2.14.3", "2.16.0", "2.14.3,2.15.1,2.16.0", 2),
        ("sequential-minor", "1.5.2", "2.0.0", "1.5.2,1.6.0,1.7.1,2.0.0", 3),
    ] {
        let out = stdout_of(
            upgrade().args(["--from", from, "--to", to, "--policy", policy, "--versions", versions, "-o", "json"]),
            0,
        );
        assert_eq!(json(&out)["hops"].as_array().unwrap().len(), hops, "{policy}: {out}");
    }
}

/// The test bed's acme policy (the generic guide plus the acme fixture chart's value
/// rules) loads, plans from its own catalog and carries each rule with the hop that
/// crosses its version: both renames at 3.9.0, `require redis.host` at 4.0.0, nothing at
/// 4.1.0; offline, the `require` is said to be unchecked.
#[test]
fn the_acme_bed_policy_plans_its_value_rules_per_hop() {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/bed/policies/acme-bed.yaml");
    let versions = "3.8.0,3.9.0,4.0.0,4.1.0,4.2.0";
    let args = ["--from", "3.8.0", "--to", "4.1.0", "--policy", policy, "--versions", versions, "-o", "json"];
    let plan = json(&stdout_of(upgrade().args(args), 0));
    // The same plan without --versions: the catalog lists the fixture's versions.
    assert_eq!(json(&stdout_of(upgrade().args(&args[..6]).args(["-o", "json"]), 0))["hops"], plan["hops"]);
    assert_eq!(plan["policy"], "acme-bed", "{plan}");
    let hops: Vec<(&str, &str, Value)> = plan["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].as_str().unwrap(), h["to"].as_str().unwrap(), h["values"].clone()))
        .collect();
    let rename = |from: &str, to: &str| {
        serde_json::json!({"version": "3.9.0", "rename": {"from": from, "to": to},
            "message": format!("chart 3.9.0 renamed {from} to {to}")})
    };
    assert_eq!(
        hops,
        [
            (
                "3.8.0",
                "3.9.0",
                Value::Array(vec![rename("postgres.host", "database.host"), rename("postgres.port", "database.port")])
            ),
            (
                "3.9.0",
                "4.0.0",
                serde_json::json!([{"version": "4.0.0", "require": "redis.host",
                    "message": "when upgrading to chart version 4.0.0 or later, add redis.host"}])
            ),
            ("4.0.0", "4.1.0", Value::Null),
        ],
        "{plan}"
    );
    let warnings = plan["warnings"].to_string();
    assert!(warnings.contains("`require redis.host` (4.0.0 on) is not checked offline"), "{warnings}");

    let table = stdout_of(upgrade().args(&args[..8]).arg("--plan"), 0);
    for line in [
        "  - hop 1 (→ 3.9.0): rename postgres.host → database.host (3.9.0 on): chart 3.9.0 renamed postgres.host to database.host",
        "  - hop 1 (→ 3.9.0): rename postgres.port → database.port (3.9.0 on): chart 3.9.0 renamed postgres.port to database.port",
        "  - hop 2 (→ 4.0.0): require redis.host (4.0.0 on): when upgrading to chart version 4.0.0 or later, add redis.host",
    ] {
        assert!(table.lines().any(|l| l == line), "no {line:?} in:\n{table}");
    }
}

#[test]
fn bad_input_exits_2_naming_what_is_wrong() {
    // `--versions CHART=APP` pairs: an app version must follow `=`, and under a policy
    // that counts in app versions the target needs one.
    let err = stderr_of(
        upgrade().args(["--from", "8.0.0", "--to", "8.3.0", "--policy", "gitlab", "--versions", "8.0.0=17.0.1,8.3.0="]),
        2,
    );
    assert!(err.contains("--versions: \"8.3.0=\" names no app version after `=`"), "{err}");
    let err = stderr_of(
        upgrade().args(["--from", "8.0.0", "--to", "8.3.0", "--policy", "gitlab", "--versions", "8.0.0=17.0.1,8.3.0"]),
        2,
    );
    assert!(err.contains("the requested chart 8.3.0 has no appVersion"), "{err}");
    let err = stderr_of(upgrade().args(["--from", "1.0.4", "--to", "1.3.0", "--versions", BSR_VERSIONS]), 2);
    assert!(err.contains("needs --policy or --chart"), "{err}");
    let err =
        stderr_of(upgrade().args(["--from", "1.0.4", "--to", "1.3", "--policy", "bsr", "--versions", BSR_VERSIONS]), 2);
    // A minor is not a version: the versions of that minor on offer are named instead.
    assert!(err.contains("--to 1.3 names a minor, not a version") && err.contains("--to 1.3.0"), "{err}");
    let err = stderr_of(
        upgrade().args(["--from", "1.0.4", "--to", "1.2.9", "--policy", "bsr", "--versions", BSR_VERSIONS]),
        2,
    );
    assert!(err.contains("1.2.9 is not available") && err.contains("available in 1.2: 1.2.0, 1.2.6"), "{err}");
    let err = stderr_of(upgrade().args(["--from", "1.0.4", "--to", "1.3.0", "--policy", "nope"]), 2);
    assert!(
        err.contains("no policy named \"nope\"") && err.contains("bsr, sourcegraph, coder, gitlab, sequential-minor"),
        "{err}"
    );
    // A live release needs helm: a missing one is named, with the way to point at it.
    let err =
        stderr_of(upgrade().env("HELM_BIN", "/no/such/helm").args(["bsr", "--to", "1.3.0", "--policy", "bsr"]), 2);
    assert!(err.contains("/no/such/helm is not installed or not on PATH") && err.contains("HELM_BIN"), "{err}");
    let err = stderr_of(upgrade().args(["--from", "1.0.4", "--policy", "bsr"]), 2);
    assert!(err.contains("--to"), "{err}");
    // -o json gets one JSON document even for bad input.
    let out = stdout_of(
        upgrade().args([
            "--from",
            "1.0.4",
            "--to",
            "1.2.9",
            "--policy",
            "bsr",
            "--versions",
            BSR_VERSIONS,
            "-o",
            "json",
        ]),
        2,
    );
    assert_eq!(json(&out)["error"]["exit_code"], 2);
}

#[test]
fn policies_are_listed_and_shown_verbatim() {
    let list = stdout_of(upgrade().arg("--list-policies"), 0);
    for name in ["bsr", "sourcegraph", "coder", "sequential-minor"] {
        assert!(list.contains(name), "{list}");
    }
    let shown = stdout_of(upgrade().args(["--show-policy", "coder"]), 0);
    assert_eq!(shown, include_str!("../policies/coder.yaml"));
    let err = stderr_of(upgrade().args(["--show-policy", "nope"]), 2);
    assert!(err.contains("no policy named"), "{err}");
}

#[test]
fn help_documents_the_exit_codes() {
    for cmd in [&mut upgrade(), &mut rollback()] {
        let out = stdout_of(cmd.arg("--help"), 0);
        assert!(out.contains("Exit codes:") && out.contains("3  refused by policy"), "{out}");
    }
}

fn policy_error(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, yaml).unwrap();
    let err = stderr_of(
        upgrade().args([
            "--from",
            "1.0.0",
            "--to",
            "1.1.0",
            "--versions",
            "1.0.0,1.1.0",
            "--policy",
            path.to_str().unwrap(),
        ]),
        2,
    );
    err.replace(path.to_str().unwrap(), "policy.yaml")
}

const VALID: &str = "name: x\ndescription: d\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  procedure: p\ndowngrade: {}\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n";

#[test]
fn policy_errors_name_line_column_and_a_hint() {
    let errors = [
        VALID.replace("max_minor_step", "max_minor_stpe"),
        VALID.replace("major: refuse", "major: sideways"),
        VALID.replace("procedure: p", "procedure: rolling"),
        VALID.replace("max_minor_step: 1", "max_minor_step: 2\n  fast_path:\n    min_minors: 2\n    procedure: p"),
        VALID.replace("max_minor_step: 1", "max_minor_step: 0"),
        VALID.to_string() + "      - run: {name: r, argv: [x, \"{to_shcema}\"]}\n",
        // Literal braces written as a terminal takes them: JSON, where a `{` opens no
        // placeholder, and a jsonpath, which reads as an unknown one.
        VALID.to_string()
            + "      - run: {name: stop, argv: [kubectl, patch, deploy, \"{release}\", -p, '{\"spec\":{\"replicas\":0}}']}\n",
        VALID.to_string()
            + "      - run: {name: ready, argv: [kubectl, get, deploy, \"-o=jsonpath={.status.readyReplicas}\"]}\n",
        VALID.to_string() + "catalog:\n  - version: 1.2\n    schema: 3\n",
        VALID.replace("- deploy: {}", "- deplyo: {}"),
        VALID.replace("- deploy: {}", "- verify"),
        VALID.to_string() + "typical_minutes:\n  patch: [5, 10]\n  minor: [-10, 30]\n",
        VALID.to_string() + "typical_minutes:\n  minor: [30, 10]\n",
        VALID.to_string() + "typical_minutes:\n  minro: [10, 30]\n",
        VALID.to_string() + "catalog:\n  - version: 1.2.0\n    duration: 30m-10m\n",
        VALID.to_string() + "versions: ap\n",
    ];
    let rendered: Vec<String> = errors.iter().map(|y| policy_error(y)).collect();
    insta::assert_snapshot!(rendered.join("\n----\n"));
}

#[test]
fn the_chart_name_picks_the_preset() {
    for (chart, policy) in [
        ("oci://us-docker.pkg.dev/buf-images-1/bsr/charts/bsr", "bsr"),
        ("coder-v2/coder", "coder"),
        ("myrepo/unknown-app", "sequential-minor"),
    ] {
        let out = stdout_of(
            upgrade().args([
                "--from",
                "1.0.4",
                "--to",
                "1.1.9",
                "--chart",
                chart,
                "--versions",
                BSR_VERSIONS,
                "-o",
                "json",
            ]),
            0,
        );
        assert_eq!(json(&out)["policy"], policy, "{chart}");
    }
}

// ---------------------------------------------------------------------------------------
// Bad input found before anything is read or changed (no cluster is needed: these runs
// fail before the first helm call, with exit 2).

/// A live run that must be refused as bad input, without reaching helm (HELM_BIN points
/// nowhere, so a run that got that far would exit 2 for another reason and say so).
fn refused_before_helm(args: &[&str]) -> String {
    let out = upgrade()
        .env("HELM_BIN", "/no/such/helm")
        .args(args)
        .timeout(std::time::Duration::from_secs(10))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("/no/such/helm"), "helm was asked before the flags were checked: {stderr}");
    stderr
}

#[test]
fn durations_are_checked_before_anything_runs() {
    let stderr = refused_before_helm(&["bsr", "--resume", "--timeout", "99999999999999999999h"]);
    assert!(stderr.contains("longer than the maximum of 24h"), "{stderr}");
    let stderr = refused_before_helm(&["bsr", "--to", "1.1.0", "--timeout", "bogus"]);
    assert!(stderr.contains("\"bogus\" is not a duration"), "{stderr}");
    let stderr = refused_before_helm(&["bsr", "--to", "1.1.0", "--timeout=-5m"]);
    assert!(stderr.contains("negative"), "{stderr}");
}

#[test]
fn release_names_are_checked_as_helm_does() {
    for name in ["--all", "a b", "UPPER", "x.", &"a".repeat(54)] {
        let stderr = refused_before_helm(&["--to", "1.1.0", "--", name]);
        assert!(stderr.contains("is not a valid release name"), "{name}: {stderr}");
    }
}

#[test]
fn set_lines_and_values_files_are_checked_before_anything_runs() {
    let stderr = refused_before_helm(&["bsr", "--to", "1.1.0", "--set", "password"]);
    assert!(stderr.contains("--set: key \"password\" has no value"), "{stderr}");
    let stderr = refused_before_helm(&["bsr", "--to", "1.1.0", "--set-json", "a={secret-value"]);
    assert!(stderr.contains("is not valid JSON") && !stderr.contains("secret-value"), "{stderr}");
    let stderr = refused_before_helm(&["bsr", "--to", "1.1.0", "-f", "/no/such/values.yaml"]);
    assert!(stderr.contains("-f/--values /no/such/values.yaml"), "{stderr}");
    let stderr = refused_before_helm(&["bsr", "--to", "1.1.0", "--set-file", "cert=/no/such/cert.pem"]);
    assert!(stderr.contains("--set-file /no/such/cert.pem"), "{stderr}");
}

#[test]
fn policy_files_are_regular_files_of_bounded_size() {
    let plan = |policy: &str| {
        upgrade()
            .args(["--from", "1.0.4", "--to", "1.1.0", "--policy", policy, "--versions", "1.0.4,1.1.0"])
            .timeout(std::time::Duration::from_secs(10))
            .output()
            .unwrap()
    };
    let out = plan("/dev/zero");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a device, not a regular file"));
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("policy.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let out = plan(fifo.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2), "a FIFO must not block the run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a named pipe"));
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(1024 * 1024 + 1)).unwrap();
    let out = plan(big.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 1 MiB"));
    let out = plan(dir.path().to_str().unwrap());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
}

#[test]
fn the_lock_shows_the_command_shape_without_values() {
    use std::ffi::OsString;
    let args: Vec<OsString> = [
        "helm-safe-upgrade",
        "bsr",
        "--to",
        "1.3.0",
        "--set",
        "password=hunter2",
        "--set-json=db={\"p\":1}",
        "-fvalues.yaml",
        "-n",
        "prod",
        "--force-unlock=ana@box pid 7",
        "--yes",
        "--",
        "extra",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let shape = helm_safe_upgrade::commands::command_shape(helm_safe_upgrade::commands::Mode::Upgrade, &args);
    assert_eq!(
        shape,
        "helm safe-upgrade bsr --to *** --set *** --set-json=*** -f*** -n *** --force-unlock=*** --yes -- extra"
    );
}

/// Colour on a pipe: off unless asked for; `--color` wins over NO_COLOR, NO_COLOR over
/// helm's HELM_COLOR; JSON never; and a pipe is never wrapped, whatever COLUMNS says.
#[test]
fn colour_follows_the_flag_then_no_color_then_helm_color() {
    let plan = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = upgrade();
        cmd.args(["--from", "1.0.4", "--to", "1.3.0", "--policy", "bsr", "--versions", BSR_VERSIONS, "--plan"]);
        cmd.args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        stdout_of(&mut cmd, 0)
    };
    let coloured = |text: &str| text.contains("\x1b[");
    let plain = plan(&[], &[]);
    assert!(!coloured(&plain), "a pipe gets no colour by default:\n{plain}");
    let always = plan(&["--color", "always"], &[]);
    assert!(always.contains("\x1b[1mHOP  FROM   TO"), "{always}");
    assert!(coloured(&plan(&["--colour=always"], &[])), "helm 4's other spelling");
    assert!(coloured(&plan(&["--color", "always"], &[("NO_COLOR", "1")])), "the flag wins over NO_COLOR");
    assert!(coloured(&plan(&[], &[("HELM_COLOR", "always")])));
    assert!(!coloured(&plan(&[], &[("HELM_COLOR", "always"), ("NO_COLOR", "1")])), "NO_COLOR wins over HELM_COLOR");
    assert!(coloured(&plan(&[], &[("HELM_COLOR", "always"), ("NO_COLOR", "")])), "an empty NO_COLOR is unset");
    assert!(!coloured(&plan(&["--color", "never"], &[("HELM_COLOR", "always")])));
    assert!(!coloured(&plan(&["--color", "auto"], &[("HELM_COLOR", "always")])), "auto: a pipe is not watched");
    let json = plan(&["--color", "always", "-o", "json"], &[]);
    assert!(!coloured(&json), "JSON never: {json}");
    assert_eq!(plan(&[], &[("COLUMNS", "80")]), plain, "a pipe is never wrapped");
    assert_eq!(
        plan(&["--color", "always"], &[]).replace("\x1b[1m", "").replace("\x1b[33m", "").replace("\x1b[0m", ""),
        plain,
        "colour adds codes, never words"
    );
}

#[test]
fn errors_are_coloured_on_request_and_bad_colour_values_refused() {
    let mut cmd = upgrade();
    cmd.args(["--from", "1.0.4", "--to", "2.1.0", "--policy", "bsr", "--versions", BSR_TRAIN, "--color", "always"]);
    let err = stderr_of(&mut cmd, 3);
    assert!(err.starts_with("\x1b[1m\x1b[31merror\x1b[0m: \x1b[1m\x1b[31mrefused\x1b[0m: 1.0.4 → 2.1.0"), "{err}");
    let err = stderr_of(upgrade().args(["--from", "1.0.4", "--color", "sometimes"]), 2);
    assert!(err.contains("invalid value 'sometimes' for '--color <WHEN>'"), "{err}");
}

#[test]
fn diff_offline_is_refused_rather_than_ignored() {
    let offline = ["--from", "1.0.4", "--to", "1.3.0", "--policy", "bsr", "--versions", BSR_VERSIONS, "--plan"];
    for diff in ["--diff", "--diff=full"] {
        let err = stderr_of(upgrade().args(offline).arg(diff), 2);
        assert!(err.contains("--diff needs a live release"), "{diff}: {err}");
    }
    let err = stderr_of(upgrade().args(offline).arg("--diff=everything"), 2);
    assert!(err.contains("everything"), "{err}");
}

#[test]
fn diff_that_would_show_nothing_is_refused_rather_than_ignored() {
    // Checked before anything is read: no cluster is needed to be told.
    let err = stderr_of(upgrade().args(["bsr", "--to", "1.3.0", "--plan", "--diff", "--no-preflight"]), 2);
    assert!(err.contains("--no-preflight renders nothing"), "{err}");
    let err = stderr_of(rollback().args(["bsr", "--plan", "--diff=full"]), 2);
    assert!(err.contains("--diff is shown for an upgrade's hops only"), "{err}");
}

// ---------------------------------------------------------------------------------------
// --history

/// A kubeconfig whose API server nothing answers (port 1): enough for a run that must not
/// need the cluster.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: kind-x, context: {cluster: c, user: u}}]\ncurrent-context: kind-x\n",
    )
    .unwrap();
    path
}

#[test]
fn history_takes_no_flag_of_a_run_and_needs_a_release() {
    for args in [
        &["bsr", "--history", "--to", "1.2.0"][..],
        &["bsr", "--history", "--plan"],
        &["bsr", "--history", "--resume"],
        &["bsr", "--history", "--set", "a=b"],
        &["bsr", "--history", "--chart", "demo/bsr"],
        &["bsr", "--history", "--fast-path"],
    ] {
        let err = stderr_of(upgrade().args(args), 2);
        assert!(err.contains("cannot be used with"), "{args:?}: {err}");
    }
    let err = stderr_of(rollback().args(["bsr", "--history", "--accept-data-loss"]), 2);
    assert!(err.contains("cannot be used with"), "{err}");
    let err = stderr_of(upgrade().arg("--history"), 2);
    assert!(err.contains("--history needs a release"), "{err}");
}

/// Through helm, HELM_NAMESPACE, HELM_KUBECONTEXT and HELM_DEBUG are always set: they
/// fill flags that --history must not refuse. The local ledger is read without the
/// cluster, and what an edited record holds is shown, never obeyed.
#[test]
fn history_of_a_local_ledger_as_helm_starts_the_plugin() {
    use helm_safe_upgrade::run::ledger::{FileStore, Ledger, LedgerStore, RunRecord};
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let state = dir.path().join("state");
    let file = FileStore::new(&state.join("helm-safe-upgrade"), Some("kind-x"), "bsr", "bsr");
    let mut ledger = Ledger::new("bsr", "bsr");
    ledger.runs.push(RunRecord {
        id: 1,
        started_at: "2026-11-22T05:46:21Z".into(),
        ended_at: Some("2026-11-22T05:46:25Z".into()),
        holder: "ana@box pid 7".into(),
        command: "helm safe-upgrade bsr --to *** \x1b]0;owned\x07".into(),
        direction: "upgrade".into(),
        from: "1.0.4".parse().unwrap(),
        to: "1.1.9".parse().unwrap(),
        outcome: Some("completed".into()),
        at: Some("1.1.9".parse().unwrap()),
        message: Some("\x1b[2Jcleared".into()),
        steps: vec![],
    });
    file.write(&ledger, None).unwrap();
    let history = |mode: &str, extra: &[&str]| {
        let mut cmd = upgrade();
        cmd.env("HELM_PLUGIN_NAME", mode)
            .env("HELM_NAMESPACE", "bsr")
            .env("HELM_KUBECONTEXT", "kind-x")
            .env("HELM_DEBUG", "false")
            .env("KUBECONFIG", &kubeconfig)
            .env("XDG_STATE_HOME", &state)
            .args(["bsr", "--history", "--local-ledger"])
            .args(extra)
            .timeout(std::time::Duration::from_secs(20));
        cmd.output().unwrap()
    };
    let out = history("safe-upgrade", &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("history of bsr: 1 run, recorded in "), "{stdout}");
    assert!(stdout.contains("  completed at 1.1.9 in 4s: \\x1b[2Jcleared"), "{stdout}");
    assert!(stdout.contains("\\x1b]0;owned\\x07") && !stdout.contains('\x1b'), "{stdout}");
    assert!(stderr.contains("--local-ledger: the history of bsr is read from"), "{stderr}");
    // safe-rollback shows the same history.
    assert_eq!(history("safe-rollback", &[]).stdout, out.stdout);
    let out = history("safe-upgrade", &["-o", "json"]);
    let doc = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(doc["runs"][0]["outcome"], "completed");
    assert_eq!(doc["runs"][0]["message"], "\x1b[2Jcleared", "JSON carries the text as recorded");
    assert!(!out.stdout.contains(&0x1b), "escaped as \\u001b in the document");
}

/// `--execute` takes a plan file and nothing that would make another plan; an offline plan
/// (no release revision to check against) is refused as not executable, before any
/// cluster is read.
#[test]
fn execute_refuses_other_plan_flags_and_offline_plans() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let file_arg = file.to_str().unwrap();
    for extra in [&["--to", "1.3.0"][..], &["--plan"], &["--resume"], &["--fast-path"], &["--from", "1.0.4"]] {
        let mut args = vec!["--execute", file_arg];
        args.extend_from_slice(extra);
        let stderr = stderr_of(upgrade().args(&args), 2);
        assert!(stderr.contains("cannot be used with"), "{extra:?}: {stderr}");
    }
    let offline = stdout_of(
        upgrade().args([
            "--from",
            "1.0.4",
            "--to",
            "1.3.0",
            "--policy",
            "bsr",
            "--versions",
            BSR_VERSIONS,
            "--plan",
            "-o",
            "json",
        ]),
        0,
    );
    assert!(json(&offline).get("digest").is_none(), "an offline plan is not sealed");
    std::fs::write(&file, &offline).unwrap();
    let stderr = stderr_of(upgrade().args(["--execute", file_arg, "--yes"]), 2);
    assert!(stderr.contains("is an offline plan (--from)"), "{stderr}");
    let stderr = stderr_of(rollback().args(["--execute", file_arg, "--yes"]), 2);
    assert!(stderr.contains("is an offline plan (--from)"), "{stderr}");
    std::fs::write(&file, r#"{"schema": 9, "direction": "upgrade", "hops": []}"#).unwrap();
    let stderr = stderr_of(upgrade().args(["--execute", file_arg]), 2);
    assert!(stderr.contains("schema 9, newer than this helm-safe-upgrade reads"), "{stderr}");
}

#[test]
fn short_help_fits_a_screen_and_long_help_says_how_to_get_each() {
    for (name, mut cmd) in [("safe-upgrade", upgrade()), ("safe-rollback", rollback())] {
        let short = stdout_of(cmd.arg("-h"), 0);
        assert!(short.lines().count() <= 30, "{name} -h is {} lines:\n{short}", short.lines().count());
        assert!(short.contains("Run with --help for every flag"), "{name}: {short}");
        assert!(!short.contains("-h, --help"), "{name}: the last line says it: {short}");
    }
    let long = stdout_of(upgrade().arg("--help"), 0);
    assert!(long.contains("-h, --help") && long.contains("Fleet view (many releases)"), "{long}");
}
