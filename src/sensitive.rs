//! Which of the operator's values may be shown, and to whom.
//!
//! Two audiences ([`Disclosure`]): the operator at their own terminal, who typed the
//! values and needs to see the one that broke a hop (`--set image.tag=broken`), and
//! everyone else — the ledger (a ConfigMap anyone with read access to the namespace can
//! read), `-o json`, CI logs, files. Everyone else never sees a value. The operator sees
//! theirs unless it looks secret, by its key or by its shape, because a terminal is also
//! a screen share, a recorded session and a scrollback:
//!
//! - **the key rule** ([`key_looks_secret`]): a key path with a segment that names a
//!   secret (`postgres.password`, `apiKey`, `tls.key`, `auth.token`, `DB_PASSWD`);
//! - **the value rule** ([`value_looks_secret`]): a value shaped like one (a URL with a
//!   password, a PEM block, a JWT, a long random-looking blob, `Password=` parameters).
//!
//! Both err on the side of hiding: a false positive costs the operator `***` on their
//! own screen, a false negative shows a secret. Pure functions, no I/O; a leaf.

/// Who will read what is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disclosure {
    /// Anyone, now or later: the ledger, `-o json`, logs that are not a terminal, the
    /// lock's command shape. Every value is hidden.
    Redacted,
    /// The operator's own terminal (stderr, or stdout, is a terminal a person watches,
    /// not CI): their values are shown unless they look secret.
    OperatorTerminal,
}

/// Words that name a secret when a key path has them as a whole word, after splitting
/// on punctuation, camelCase and digits: `key` matches `apiKey`, `tls.key` and
/// `private_key`, never `monkey` or `keycloak`.
const SECRET_WORDS: &[&str] = &[
    "auth",
    "authorization",
    "bearer",
    "cert",
    "certificate",
    "certificates",
    "certs",
    "cookie",
    "cookies",
    "credential",
    "credentials",
    "creds",
    "crt",
    "dsn",
    "hmac",
    "jwt",
    "key",
    "keys",
    "keystore",
    "nonce",
    "otp",
    "pass",
    "passphrase",
    "passwd",
    "password",
    "passwords",
    "pem",
    "private",
    "pw",
    "pwd",
    "salt",
    "secret",
    "secrets",
    "session",
    "sessions",
    "sig",
    "signature",
    "token",
    "tokens",
];

/// Stems that name a secret anywhere inside a segment, for keys written as one word
/// (`dbpassword`, `clientsecret`, `apikey`, `connectionstring`). `key` alone is not one:
/// it is a whole word only (above), or part of the compounds listed here.
const SECRET_STEMS: &[&str] = &[
    "accesskey",
    "apikey",
    "authkey",
    "clientkey",
    "connectionstring",
    "connstr",
    "credential",
    "encryptionkey",
    "kubeconfig",
    "masterkey",
    "passphrase",
    "passwd",
    "password",
    "privatekey",
    "secret",
    "secretkey",
    "sessionkey",
    "signingkey",
    "sshkey",
    "token",
    "webhookurl",
];

/// A blob (base64 or hex) this long or longer looks like key material: 32 characters
/// are 16 random bytes in hex, 24 in base64 — the size of the shortest keys and tokens
/// in common use, and longer than the words, versions and names values usually hold.
pub const BLOB_MIN_CHARS: usize = 32;

/// Whether a key path names a secret: any segment (case-insensitive) with one of
/// [`SECRET_WORDS`] as a word of its own, or one of [`SECRET_STEMS`] anywhere in it.
pub fn key_looks_secret<S: AsRef<str>>(path: &[S]) -> bool {
    path.iter().any(|segment| segment_looks_secret(segment.as_ref()))
}

fn segment_looks_secret(segment: &str) -> bool {
    let joined: String = segment.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    SECRET_STEMS.iter().any(|stem| joined.contains(stem))
        || words(segment).iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// The words of a key segment, lower-cased: split at every character that is not a
/// letter or digit (`.`, `[`, `_`, `-`, `/`, …), between a lower-case letter and an
/// upper-case one (`apiKey`), before the last capital of a run followed by a lower-case
/// letter (`APIKey` → `api`, `key`), and between letters and digits (`oauth2Token`).
pub fn words(segment: &str) -> Vec<String> {
    let chars: Vec<char> = segment.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            flush(&mut current, &mut out);
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_uppercase() && c.is_uppercase() && next_lower)
                || (prev.is_alphabetic() && c.is_numeric())
                || (prev.is_numeric() && c.is_alphabetic());
            if boundary {
                flush(&mut current, &mut out);
            }
        }
        current.extend(c.to_lowercase());
    }
    flush(&mut current, &mut out);
    out
}

fn flush(current: &mut String, out: &mut Vec<String>) {
    if !current.is_empty() {
        out.push(std::mem::take(current));
    }
}

/// Whether a value is shaped like a secret, whatever its key: a URL with a password
/// (`postgres://u:p@db`), a PEM block (`-----BEGIN`), a JWT, `Bearer`/`Basic`
/// credentials, a parameter whose name looks secret (`Server=db;Password=p`,
/// `?token=x`), or a base64 or hex blob of [`BLOB_MIN_CHARS`] or more.
pub fn value_looks_secret(value: &str) -> bool {
    value.contains("-----BEGIN")
        || is_authorization(value)
        || url_has_password(value)
        || has_secret_parameter(value)
        || tokens(value).any(|t| is_jwt(t) || is_blob(t))
}

/// `Bearer TOKEN` or `Basic CREDENTIALS`: an HTTP Authorization header's value.
fn is_authorization(value: &str) -> bool {
    let words: Vec<&str> = value.split_whitespace().collect();
    words.len() == 2 && ["bearer", "basic"].contains(&words[0].to_lowercase().as_str())
}

/// `scheme://user:password@host`: a colon in the userinfo of any URL in the value.
fn url_has_password(value: &str) -> bool {
    value.match_indices("://").any(|(i, sep)| {
        let rest = &value[i + sep.len()..];
        let end = rest.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(rest.len());
        let authority = &rest[..end];
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
    })
}

/// `name=value` pieces (of a query string, a connection string, a flag) whose name
/// looks secret by the key rule.
fn has_secret_parameter(value: &str) -> bool {
    value
        .split(|c: char| matches!(c, '?' | '&' | ';') || c.is_whitespace())
        .filter_map(|piece| piece.split_once('='))
        .any(|(name, v)| !v.is_empty() && key_looks_secret(&[name.trim()]))
}

/// The candidate tokens of a value: split at blanks, quotes and the punctuation that
/// separates parts of URLs, lists and parameters — but not at `/`, `+`, `_`, `-` and
/// `.`, which a base64 blob or a JWT holds.
fn tokens(value: &str) -> impl Iterator<Item = &str> {
    value.split(|c: char| c.is_whitespace() || "\"'`,;&?=:@()<>[]{}|\\".contains(c)).filter(|t| t.len() >= 16)
}

/// Three base64url parts separated by dots, the first a JSON object (`eyJ` is `{"`).
fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// Hex of [`BLOB_MIN_CHARS`] or more (with a digit and a letter), or base64 /
/// base64url of that length with upper-case, lower-case letters and digits — random
/// bytes almost always have all three; names, paths and versions seldom do. A `/`
/// more often than once in 16 characters reads as a path, not base64 (random base64
/// has one in 64).
fn is_blob(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    let n = body.chars().count();
    if n < BLOB_MIN_CHARS {
        return false;
    }
    let has = |f: fn(&char) -> bool| body.chars().any(|c| f(&c));
    if body.chars().all(|c| c.is_ascii_hexdigit()) {
        return has(char::is_ascii_digit) && has(char::is_ascii_alphabetic);
    }
    let alphabet = body.chars().all(|c| c.is_ascii_alphanumeric() || "+/-_".contains(c));
    let slashes = body.chars().filter(|&c| c == '/').count();
    alphabet
        && slashes * 16 <= n
        && has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
}

/// Whether a `--set-json` document holds anything secret: an object key (at any depth)
/// that the key rule flags, or a string that the value rule flags. Such a document is
/// hidden whole: showing the rest of it would mean re-writing the operator's JSON.
pub fn json_looks_secret(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| key_looks_secret(&[k]) || json_looks_secret(v)),
        serde_json::Value::Array(items) => items.iter().any(json_looks_secret),
        serde_json::Value::String(s) => value_looks_secret(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_key(path: &str) -> bool {
        key_looks_secret(&path.split('.').collect::<Vec<_>>())
    }

    #[test]
    fn words_split_at_punctuation_case_and_digits() {
        assert_eq!(words("apiKey"), ["api", "key"]);
        assert_eq!(words("APIKey"), ["api", "key"]);
        assert_eq!(words("private_key"), ["private", "key"]);
        assert_eq!(words("tls-crt[0]"), ["tls", "crt", "0"]);
        assert_eq!(words("oauth2Token"), ["oauth", "2", "token"]);
        assert_eq!(words("DB_PASSWD"), ["db", "passwd"]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("ÉtéMot"), ["été", "mot"]);
    }

    #[test]
    fn key_rule_flags_secret_segments() {
        for path in [
            "postgres.password",
            "auth.token",
            "apiKey",
            "tls.key",
            "privateKey",
            "ssh.private",
            "DB_PASSWD",
            "db.pwd",
            "clientSecret",
            "existingSecret",
            "oauth2.clientsecret",
            "sentry.dsn",
            "connectionString",
            "connection_string",
            "app.sessionCookie",
            "s3.accesskey",
            "aws.secretAccessKey",
            "webhook.signature",
            "jwt.salt",
            "tls.crt",
            "ingress.tls[0].certificate",
            "registry.credentials",
            "smtp.pass",
            "x.kubeconfig",
            "PASSWORD",
        ] {
            assert!(secret_key(path), "{path} should look secret");
        }
    }

    #[test]
    fn key_rule_lets_ordinary_keys_through() {
        for path in [
            "image.tag",
            "image.repository",
            "migration.imageTag",
            "replicaCount",
            "monkey",
            "keycloak.enabled",
            "turnkey",
            "author",
            "oauth.enabled",
            "passthrough",
            "resources.limits.cpu",
            "ingress.hosts[0].host",
            "tokenizer",
            "postgres.host",
        ] {
            let flagged = secret_key(path);
            // `tokenizer` holds the stem `token`: flagged, by design (hide when unsure).
            assert_eq!(flagged, path == "tokenizer", "{path}");
        }
    }

    #[test]
    fn value_rule_flags_secret_shapes() {
        for value in [
            "postgres://app:s3cret@db.internal:5432/app",
            "https://user:pw@example.com",
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWJ5dGVz",
            "Bearer abc",
            "basic dXNlcjpwYXNz",
            "Server=db;User Id=app;Password=hunter2",
            "https://example.com/hook?token=abc",
            "https://x.blob.core.windows.net/c?sv=2020&sig=abcdef",
            "--token=xyz",
            "d41d8cd98f00b204e9800998ecf8427e",
            "3f786850e387550fdab836ed7e6dc881de23001b",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdI",
            "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
            "https://ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5@github.com/o/r",
        ] {
            assert!(value_looks_secret(value), "{value} should look secret");
        }
    }

    #[test]
    fn value_rule_lets_ordinary_values_through() {
        for value in [
            "broken",
            "1.2.6",
            "true",
            "registry.example/bufbuild/bufd:1.2.6",
            "ssh://git@github.com/o/r",
            "https://example.com/path?page=2",
            "my-very-long-release-name-for-production-east-2",
            "/var/lib/data/Volumes2024/Archive/Backups/Jan",
            "postgres.prod.internal",
            "kubernetes.io/ingress.class=nginx",
            "{a,b,c}",
            "",
            "ünïcødé välüé with spaces",
        ] {
            assert!(!value_looks_secret(value), "{value} should not look secret");
        }
    }

    #[test]
    fn json_documents_are_judged_by_every_key_and_string() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert!(json_looks_secret(&j(r#"{"user":"u","password":"p"}"#)));
        assert!(json_looks_secret(&j(r#"[{"a":{"b":{"apiKey":1}}}]"#)));
        assert!(json_looks_secret(&j(r#"{"url":"postgres://u:p@h/db"}"#)));
        assert!(!json_looks_secret(&j(r#"{"user":"u","hosts":["a","b"],"n":3}"#)));
        assert!(!json_looks_secret(&j("null")));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// A secret word lower-case, upper-case or capitalised. (Mixed case inside a word,
        /// `aUth`, is read as camelCase: the words `a` and `uth`.)
        fn secret_spelling() -> impl Strategy<Value = String> {
            (proptest::sample::select(SECRET_WORDS), 0..3).prop_map(|(word, case)| match case {
                0 => word.to_string(),
                1 => word.to_uppercase(),
                _ => format!("{}{}", word[..1].to_uppercase(), &word[1..]),
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// A secret word is found whatever surrounds it, in each casing.
            #[test]
            fn a_secret_word_is_found_in_any_case_and_position(
                before in proptest::collection::vec("[a-z]{1,8}", 0..4),
                word in secret_spelling(),
                sep in proptest::sample::select(vec![".", "_", "-", "[0].", "/"]),
                after in proptest::collection::vec("[a-z]{1,8}", 0..4),
            ) {
                let mut parts = before.clone();
                parts.push(word.clone());
                parts.extend(after.clone());
                prop_assert!(key_looks_secret(&[parts.join(sep)]), "{}", parts.join(sep));
                // camelCase: `dbPassword`, `apiKeyRef`.
                let mut upper = word.to_ascii_lowercase();
                upper[..1].make_ascii_uppercase();
                let camel = format!("{}{upper}{}", before.concat(), after.iter().map(|a| {
                    let mut a = a.clone();
                    a[..1].make_ascii_uppercase();
                    a
                }).collect::<String>());
                prop_assert!(key_looks_secret(&[&camel]), "{}", camel);
            }

            /// Random bytes in hex or base64 of the threshold's length or more look secret.
            #[test]
            fn random_key_material_looks_secret(bytes in proptest::collection::vec(any::<u8>(), 24..64)) {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let mixed = |t: &str| t.chars().any(|c| c.is_ascii_uppercase())
                    && t.chars().any(|c| c.is_ascii_lowercase())
                    && t.chars().any(|c| c.is_ascii_digit());
                let hexed = |t: &str| t.chars().any(|c| c.is_ascii_digit()) && t.chars().any(|c| c.is_ascii_alphabetic());
                // The rare draw without all three kinds of character is let through, by design.
                let body = b64.trim_end_matches('=');
                prop_assume!(mixed(body) && hexed(&hex) && body.matches('/').count() * 16 <= body.len());
                prop_assert!(value_looks_secret(&b64), "{}", b64);
                prop_assert!(value_looks_secret(&hex), "{}", hex);
                let url = format!("postgres://app:{b64}@db/app");
                prop_assert!(value_looks_secret(&url));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Anything at all, long included: no panic, and in linear time.
            #[test]
            fn any_input_is_judged_without_panic(text in any::<String>(), repeat in 1usize..2000) {
                let long = text.repeat(repeat.min(20_000 / text.len().max(1)));
                let started = std::time::Instant::now();
                let _ = key_looks_secret(&[&long]);
                let _ = value_looks_secret(&long);
                let _ = words(&long);
                prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
            }
        }

        /// Inputs built to make a careless scan quadratic.
        #[test]
        fn pathological_inputs_stay_fast() {
            let started = std::time::Instant::now();
            for piece in ["://", "a:b@", "=", "a=b;", "eyJ.", "A1b/", "\\,", "-----BEGIN", "é"] {
                let long = piece.repeat(200_000 / piece.len());
                let _ = value_looks_secret(&long);
                let _ = key_looks_secret(&[&long]);
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
        }
    }
}
