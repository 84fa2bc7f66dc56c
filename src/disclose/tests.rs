use proptest::prelude::*;

use super::*;
use crate::sensitive::{key_looks_secret, value_looks_secret};

fn s(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn upgrade_argv() -> Argv {
    Argv::new(
        "helm",
        &s(&[
            "upgrade",
            "--set",
            "image.tag=broken",
            "--set",
            "postgres.password=s3cret",
            "--set-string=token=abc",
            "--set-file",
            "tls.key=/tmp/k.pem",
            "--set-json",
            r#"db={"password":"p,w"}"#,
            "--set-json",
            "n=[1,2]",
            "--set-literal",
            "msg=a,b",
            "--set",
            r"note=x\,y,env[0].value=plain",
            "-f",
            "values.yaml",
        ]),
    )
}

#[test]
fn the_terminal_shows_ordinary_values_and_hides_secret_ones() {
    assert_eq!(
        upgrade_argv().render(Disclosure::OperatorTerminal),
        r"helm upgrade --set image.tag=broken --set 'postgres.password=***' '--set-string=token=***' --set-file tls.key=/tmp/k.pem --set-json 'db=***' --set-json 'n=[1,2]' --set-literal msg=a,b --set 'note=x\,y,env[0].value=plain' -f values.yaml"
    );
}

#[test]
fn everyone_else_sees_keys_only() {
    let shown = upgrade_argv().render(Disclosure::Redacted);
    assert_eq!(
        shown,
        "helm upgrade --set 'image.tag=***' --set 'postgres.password=***' '--set-string=token=***' --set-file 'tls.key=***' --set-json 'db=***' --set-json 'n=***' --set-literal 'msg=***' --set 'note=***,env[0].value=***' -f values.yaml"
    );
    let argv = upgrade_argv();
    assert_eq!(format!("{argv}"), shown);
    assert_eq!(format!("{argv:?}"), format!("Argv({shown})"));
}

#[test]
fn a_line_that_does_not_parse_is_hidden_whole_everywhere() {
    let argv = Argv::new("helm", &s(&["--set", "no-equals-sign-hunter2", "--set=a[x]=1"]));
    for d in [Disclosure::Redacted, Disclosure::OperatorTerminal] {
        assert_eq!(argv.render(d), "helm --set '***' '--set=***'");
    }
}

#[test]
fn control_characters_in_a_shown_value_are_escaped() {
    let argv = Argv::new("helm", &s(&["--set", "note=red\x1b[31m\nline"]));
    let shown = argv.render(Disclosure::OperatorTerminal);
    assert!(!shown.contains('\x1b') && !shown.contains('\n'), "{shown:?}");
    assert!(shown.contains(r"note=red\x1b[31m\nline"), "{shown}");
}

fn failure() -> Message {
    let argv = Argv::new(
        "helm",
        &s(&["upgrade", "--set", "image.tag=broken,replicas=3,x=test", "--set", "postgres.password=s3cret"]),
    );
    Message::plain("upgrade bsr failed (exit 1): ").then(Message::command(argv)).then("\n").then(Message::outside(
        "Error: pulling \"bufd:broken\": 3 old replicas; latest; password xs3cretx rejected; true broken-ness",
    ))
}

#[test]
fn values_quoted_back_by_other_programs_are_hidden_with_their_command_line() {
    let message = failure();
    assert_eq!(
        message.redacted(),
        "upgrade bsr failed (exit 1): helm upgrade --set 'image.tag=***,replicas=***,x=***' --set 'postgres.password=***'\nError: pulling \"bufd:***\": 3 old replicas; latest; password x***x rejected; true ***-ness"
    );
    assert_eq!(
        message.render(Disclosure::OperatorTerminal),
        "upgrade bsr failed (exit 1): helm upgrade --set image.tag=broken,replicas=3,x=test --set 'postgres.password=***'\nError: pulling \"bufd:broken\": 3 old replicas; latest; password x***x rejected; true broken-ness"
    );
}

#[test]
fn default_renderings_are_redacted() {
    let message = failure();
    let json = serde_json::to_string(&serde_json::json!({ "error": message })).unwrap();
    for shown in [message.to_string(), format!("{message:?}"), json] {
        assert!(!shown.contains("broken") && !shown.contains("s3cret"), "{shown}");
    }
}

#[test]
fn plain_text_is_the_tools_own_and_left_as_it_is() {
    let argv = Argv::new("helm", &s(&["--set", "word=back"]));
    let message = Message::plain("the way back failed: ").then(Message::command(argv));
    assert_eq!(message.redacted(), "the way back failed: helm --set 'word=***'");
    assert!(Message::plain("").is_empty() && !Message::command(Argv::new("x", &[])).is_empty());
}

/// A value as `--set` must be given to mean exactly `value`: `\` and `,` escaped, and a
/// leading `{` (which would start a list).
fn escaped(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if c == '\\' || c == ',' || (i == 0 && c == '{') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Key segments: short lower-case names, sometimes with a list index.
fn segment() -> impl Strategy<Value = String> {
    ("[a-z]{1,6}", proptest::option::of(0usize..40))
        .prop_map(|(name, index)| index.map(|i| format!("{name}[{i}]")).unwrap_or(name))
}

/// Hostile values: commas, backslashes, braces, brackets, `=`, dots, quotes, unicode,
/// control characters, after the marker `QZQZ` no key holds (4 characters: shorter
/// values are not hidden in other programs' text, see `hide_in`).
fn hostile_value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(",".to_string()),
            Just("\\".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[0]".to_string()),
            Just("=".to_string()),
            Just(".".to_string()),
            Just("'".to_string()),
            Just("\x1b".to_string()),
            Just("é☃\u{202e}".to_string()),
            "[a-z0-9]{1,8}",
        ],
        0..12,
    )
    .prop_map(|parts| format!("QZQZ{}", parts.concat()))
}

const SECRET_SEGMENTS: &[&str] = &["password", "apiKey", "tls_key", "DB-PASSWD", "clientSecret", "authToken", "dsn"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Parsed as helm does, however hostile the value; never shown to anyone but the
    /// operator, and not to them under a secret key.
    #[test]
    fn hostile_values_never_leave_the_terminal(
        path in proptest::collection::vec(segment(), 1..5),
        secret in proptest::sample::select(SECRET_SEGMENTS),
        value in hostile_value(),
        other in hostile_value(),
    ) {
        let key = path.join(".");
        let line = format!("{key}={},{key}.{secret}={}", escaped(&value), escaped(&other));
        let parsed = SetArg::new(SetKind::Set, line.as_str()).parse().unwrap();
        prop_assert_eq!(&parsed[0].value, &value);
        prop_assert_eq!(&parsed[1].value, &other);
        let argv = Argv::new("helm", &["upgrade".to_string(), "--set".to_string(), line.clone()]);
        prop_assert!(!argv.render(Disclosure::Redacted).contains("QZQZ"));
        let on_terminal = argv.render(Disclosure::OperatorTerminal);
        let keys: Vec<&str> = path.iter().map(|p| p.split('[').next().unwrap()).collect();
        let shown = !key_looks_secret(&keys) && !value_looks_secret(&value);
        prop_assert_eq!(on_terminal.matches("QZQZ").count(), usize::from(shown), "{}", on_terminal);
        let outside = format!("helm said: {value} and {other} ");
        let message = Message::command(argv).then(Message::outside(outside));
        prop_assert!(!message.redacted().contains("QZQZ"));
    }

    /// What the terminal shows of an ordinary value is what the operator typed.
    #[test]
    fn ordinary_values_are_shown_as_typed(
        path in proptest::collection::vec(segment(), 1..5),
        value in "[a-z0-9.,\\\\/:-]{0,40}",
    ) {
        let keys: Vec<&str> = path.iter().map(|p| p.split('[').next().unwrap()).collect();
        prop_assume!(!key_looks_secret(&keys) && !value_looks_secret(&value));
        let typed = format!("{}={}", path.join("."), escaped(&value));
        let set = SetArg::new(SetKind::Set, typed.as_str());
        prop_assert_eq!(set.shown(Disclosure::OperatorTerminal), typed);
        prop_assert!(set.hidden(Disclosure::OperatorTerminal).is_empty());
    }

    /// A value that looks secret is hidden wherever another program quotes it.
    #[test]
    fn secret_values_are_hidden_anywhere_in_outside_text(
        value in "[A-Za-z0-9]{1,24}",
        text in "[ -~]{0,60}",
        at in 0usize..60,
    ) {
        let mut text = text;
        text.insert_str(at.min(text.len()), &value);
        let argv = Argv::new("helm", &["--set".to_string(), format!("db.password={value}")]);
        let message = Message::command(argv.clone()).then(Message::outside(text));
        for d in [Disclosure::Redacted, Disclosure::OperatorTerminal] {
            let shown = message.render(d);
            // The key itself (`password`) may hold the value's letters: look past it.
            let outside = shown.strip_prefix(&argv.render(d)).unwrap();
            prop_assert!(!outside.contains(&value), "{}", shown);
        }
    }
}
