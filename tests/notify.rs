//! The notify hook where no cluster is needed: the policy's `notify:` (read strictly, its
//! errors located), the flags (`--notify-arg` needs `--notify`), and the lock's command
//! shape, which never shows a hook's program or arguments. The hook called by live runs
//! is in `e2e_notify.rs`.

use std::ffi::OsString;

use helm_safe_upgrade::policy;

const VALID: &str = "name: x\ndescription: d\nupgrade:\n  max_minor_step: 1\n  major: refuse\n  procedure: p\ndowngrade: {}\nprocedures:\n  p:\n    steps:\n      - deploy: {}\n";

fn error_of(yaml: &str) -> String {
    match policy::parse(yaml, "policy.yaml") {
        Err(e) => e.to_string(),
        Ok(p) => panic!("accepted, notify {:?}:\n{yaml}", p.notify),
    }
}

#[test]
fn the_policys_notify_is_an_argv_kept_as_written() {
    let p =
        policy::parse(&format!("{VALID}notify: [/usr/local/bin/page-oncall, --team, db]\n"), "policy.yaml").unwrap();
    assert_eq!(p.notify, Some(vec!["/usr/local/bin/page-oncall".into(), "--team".into(), "db".into()]));
    assert_eq!(policy::parse(VALID, "policy.yaml").unwrap().notify, None, "optional");
    // Every preset leaves it out: a hook is the site's, not the vendor's.
    for name in policy::presets::names() {
        assert_eq!(policy::load_named_or_path(name).unwrap().notify, None, "{name}");
    }
}

#[test]
fn a_bad_notify_is_a_located_error() {
    let empty = error_of(&format!("{VALID}notify: []\n"));
    assert!(empty.starts_with("invalid policy policy.yaml:12:9: notify: the command is empty"), "{empty}");
    assert!(
        empty.contains("12 | notify: []") && empty.contains("hint: write the program and its arguments as a list"),
        "{empty}"
    );

    let blank = error_of(&format!("{VALID}notify: [\"\", x]\n"));
    assert!(blank.contains("policy.yaml:12:9: notify: the command is empty"), "{blank}");

    // A placeholder would not be filled: refused, pointing at the line.
    let placeholder = error_of(&format!("{VALID}notify:\n  - page-oncall\n  - \"{{release}}\"\n"));
    assert!(
        placeholder.starts_with(
            "invalid policy policy.yaml:13:3: notify: \"{release}\" has a placeholder; notify's arguments are passed as written"
        ),
        "{placeholder}"
    );
    assert!(placeholder.contains("hint: leave it out: the hook reads the release"), "{placeholder}");
    // Braces that name no placeholder are passed as written (JSON, a template of the hook's).
    let json = format!("{VALID}notify: [page-oncall, '{{\"team\": \"db\"}}', '{{{{.release}}}}']\n");
    let policy = helm_safe_upgrade::policy::parse(&json, "policy.yaml").expect("JSON in an argument is fine");
    assert_eq!(policy.notify.unwrap(), ["page-oncall", r#"{"team": "db"}"#, "{{.release}}"]);

    // Not a list: the reader says where.
    let text = error_of(&format!("{VALID}notify: page-oncall --team db\n"));
    assert!(text.starts_with("invalid policy policy.yaml:12:"), "{text}");
    // A misspelt key is an unknown field, as everywhere in a policy.
    let typo = error_of(&format!("{VALID}notfy: [x]\n"));
    assert!(typo.contains("policy.yaml:12:1: unknown field `notfy`") && typo.contains("notify"), "{typo}");
}

#[test]
fn notify_arg_without_notify_is_a_usage_error() {
    let out = assert_cmd::Command::cargo_bin("helm-safe-upgrade")
        .unwrap()
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_PLUGIN_NAME")
        .args(["bsr", "--to", "1.1.9", "--yes", "--notify-arg", "https://hooks.example/T0/s3cret"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--notify <PROGRAM>"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn the_lock_never_shows_the_hook_or_its_arguments() {
    let args: Vec<OsString> = [
        "helm-safe-upgrade",
        "bsr",
        "--to",
        "1.3.0",
        "--notify",
        "/opt/hooks/slack",
        "--notify-arg",
        "https://hooks.example/T0/s3cret",
        "--notify-arg=--token=t0ken",
        "--notify-arg",
        "-v",
        "--yes",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let shape = helm_safe_upgrade::commands::command_shape(helm_safe_upgrade::commands::Mode::Upgrade, &args);
    assert_eq!(
        shape,
        "helm safe-upgrade bsr --to *** --notify *** --notify-arg *** --notify-arg=*** --notify-arg *** --yes"
    );
}
