//! Registry credentials, found the way helm finds them.
//!
//! helm (pkg/registry/client.go, 3.19 and 4.1) reads its own registry config
//! (`$HELM_REGISTRY_CONFIG`, default `~/.config/helm/registry/config.json`) and falls back
//! to docker's (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`). Both are
//! docker-format files read by oras-go, which, per file and host, asks in this order:
//! `credHelpers[host]`, then `credsStore`, then — only when the file configures no
//! authentication at all — the platform's default credential helper if it is installed,
//! and otherwise the file's own `auths` entry (`auth` = base64 `user:password`, or
//! `username`/`password`, plus `identitytoken` and `registrytoken`). The first file that
//! yields a credential wins (helm's own lookup order).
//!
//! This module owns that lookup and nothing else. It never spawns a credential helper:
//! the caller passes a [`HelperFn`] that runs `docker-credential-<helper> get` (see
//! [`helper_invocation`] and [`parse_helper_output`]). [`lookup`] is pure over file
//! contents, so it is tested without touching anyone's home. Secrets never appear in
//! `Debug` output or in error messages.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::CatalogError;

/// Runs a docker credential helper: `(helper, server)` → `Some((username, secret))`,
/// `None` when the helper has no credentials for `server`, `Err(message)` when it fails.
/// `helper` is the suffix (`pass` for `docker-credential-pass`).
pub type HelperFn<'a> = dyn Fn(&str, &str) -> Result<Option<(String, String)>, String> + 'a;

/// A helper that is never available: for callers that cannot run helpers (and tests).
pub fn no_helper(helper: &str, _server: &str) -> Result<Option<(String, String)>, String> {
    Err(format!("credential helpers are not available here (docker-credential-{helper} was asked for)"))
}

/// What a registry accepts as proof, as oras-go's `auth.Credential` models it. Empty
/// strings mean "not given".
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token service.
    pub identity_token: String,
    /// A bearer token sent to the registry as it is (`registrytoken`).
    pub registry_token: String,
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), password: password.into(), ..Credentials::default() }
    }

    pub fn is_empty(&self) -> bool {
        self == &Credentials::default()
    }

    /// Both halves of a Basic credential are present.
    pub fn has_basic(&self) -> bool {
        !self.username.is_empty() && !self.password.is_empty()
    }
}

// Hand-written so that `{:?}` in a log or a panic never shows a secret.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &mark(&self.password))
            .field("identity_token", &mark(&self.identity_token))
            .field("registry_token", &mark(&self.registry_token))
            .finish()
    }
}

/// Credentials and where they came from (a file path, or a helper named by a file), so
/// a refusal can say which login to redo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub credentials: Credentials,
    pub origin: String,
}

/// Which of the two files a config is: helm fails on a malformed registry config of its
/// own, but silently ignores a docker config it cannot load (client.go: "use Helm
/// credentials with fallback to Docker" only when the docker store loads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Helm,
    Docker,
}

/// Where the credential files are, and which default helper helm would consult.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialFiles {
    pub helm_config: PathBuf,
    /// `None` when neither `$DOCKER_CONFIG` nor a home directory is known.
    pub docker_config: Option<PathBuf>,
    /// The platform's default credential helper if it is installed (oras-go's
    /// `DetectDefaultNativeStore`, which helm turns on): used for a file that configures
    /// no authentication at all.
    pub default_store: Option<String>,
}

impl CredentialFiles {
    /// The locations helm uses, from environment variables (`var`) and the home directory.
    ///
    /// helm hands a plugin `HELM_REGISTRY_CONFIG`; the fallbacks repeat helmpath's rules
    /// (`HELM_CONFIG_HOME`, then `XDG_CONFIG_HOME/helm`, then the platform default).
    pub fn from_env(var: impl Fn(&str) -> Option<String>, home: Option<&Path>) -> CredentialFiles {
        let set = |k: &str| var(k).filter(|v| !v.is_empty());
        let helm_config = if let Some(p) = set("HELM_REGISTRY_CONFIG") {
            PathBuf::from(p)
        } else {
            let config_home =
                set("HELM_CONFIG_HOME").map(PathBuf::from).unwrap_or_else(|| match set("XDG_CONFIG_HOME") {
                    Some(xdg) => Path::new(&xdg).join("helm"),
                    None => {
                        let home = home.map(Path::to_path_buf).unwrap_or_default();
                        if cfg!(target_os = "macos") {
                            home.join("Library/Preferences/helm")
                        } else {
                            home.join(".config/helm")
                        }
                    }
                });
            config_home.join("registry/config.json")
        };
        let docker_config = match set("DOCKER_CONFIG") {
            Some(dir) => Some(Path::new(&dir).join("config.json")),
            None => home.map(|h| h.join(".docker/config.json")),
        };
        let default_store = default_store(var("PATH").as_deref().map(OsStr::new));
        CredentialFiles { helm_config, docker_config, default_store }
    }

    /// [`CredentialFiles::from_env`] with this process's environment.
    pub fn from_process_env() -> CredentialFiles {
        CredentialFiles::from_env(crate::env::get, std::env::home_dir().as_deref())
    }
}

/// oras-go's platform default helper, if its binary is on `PATH` (Linux: `pass` when the
/// `pass` program exists, else `secretservice`; macOS: `osxkeychain`).
fn default_store(path: Option<&OsStr>) -> Option<String> {
    let path = path?;
    let on_path = |program: &str| std::env::split_paths(path).any(|dir| is_executable(&dir.join(program)));
    let platform = if cfg!(target_os = "macos") {
        "osxkeychain"
    } else if on_path("pass") {
        "pass"
    } else {
        "secretservice"
    };
    on_path(&format!("docker-credential-{platform}")).then(|| platform.to_string())
}

/// A file with an execute bit set.
#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// No execute bit on Windows: a file that exists counts.
#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// One credential file's contents (`None`: the file does not exist).
#[derive(Clone, Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub kind: ConfigKind,
    pub contents: Option<String>,
}

/// Reads the files named by `files` and looks `registry` up in them. A missing file is
/// no credentials; an unreadable helm registry config is an error.
pub fn find(registry: &str, files: &CredentialFiles, helper: &HelperFn<'_>) -> Result<Option<Found>, CatalogError> {
    let read = |path: &Path, kind: ConfigKind| -> Result<ConfigFile, CatalogError> {
        let contents = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) if kind == ConfigKind::Docker => None,
            Err(e) => {
                return Err(CatalogError::CredentialFile { path: path.display().to_string(), reason: e.to_string() });
            }
        };
        Ok(ConfigFile { path: path.to_path_buf(), kind, contents })
    };
    let mut configs = vec![read(&files.helm_config, ConfigKind::Helm)?];
    if let Some(docker) = &files.docker_config {
        configs.push(read(docker, ConfigKind::Docker)?);
    }
    lookup(registry, &configs, files.default_store.as_deref(), helper)
}

/// The key credentials are stored under: the host, except Docker Hub, which docker and
/// oras-go file under its legacy index address.
pub fn server_address(registry: &str) -> String {
    match registry {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "https://index.docker.io/v1/".to_string(),
        other => other.to_string(),
    }
}

/// Pure lookup: the first config (in the order given: helm's, then docker's) that yields
/// a credential for `registry` wins.
pub fn lookup(
    registry: &str,
    configs: &[ConfigFile],
    default_store: Option<&str>,
    helper: &HelperFn<'_>,
) -> Result<Option<Found>, CatalogError> {
    let server = server_address(registry);
    for config in configs {
        let Some(text) = &config.contents else { continue };
        let file_error =
            |reason: String| CatalogError::CredentialFile { path: config.path.display().to_string(), reason };
        let parsed: DockerConfig = match serde_json::from_str(text) {
            Ok(parsed) => parsed,
            Err(_) if config.kind == ConfigKind::Docker => continue,
            // serde_json's message names line and column, never the content.
            Err(e) => return Err(file_error(format!("not valid JSON: {e}"))),
        };
        if let Some(found) = lookup_one(&server, &parsed, config, default_store, helper).map_err(|e| match e {
            LookupError::File(reason) => file_error(reason),
            LookupError::Catalog(e) => e,
        })? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

enum LookupError {
    File(String),
    Catalog(CatalogError),
}

fn lookup_one(
    server: &str,
    cfg: &DockerConfig,
    config: &ConfigFile,
    default_store: Option<&str>,
    helper: &HelperFn<'_>,
) -> Result<Option<Found>, LookupError> {
    let path = config.path.display();
    let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let configured = nonempty(&cfg.creds_store).is_some() || !cfg.cred_helpers.is_empty() || !cfg.auths.is_empty();
    let chosen = match (cfg.cred_helpers.get(server).filter(|h| !h.is_empty()), nonempty(&cfg.creds_store)) {
        (Some(h), _) => Some((h.clone(), format!("credHelpers in {path}"))),
        (None, Some(store)) => Some((store, format!("credsStore in {path}"))),
        (None, None) if !configured => {
            default_store.map(|d| (d.to_string(), "the default credential store".to_string()))
        }
        (None, None) => None,
    };
    if let Some((name, why)) = chosen {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            // The name becomes part of a program name: refuse paths and oddities.
            return Err(LookupError::File(format!("credential helper name {name:?} is not a plain name")));
        }
        let answer = helper(&name, server).map_err(|message| {
            LookupError::Catalog(CatalogError::CredentialHelper {
                helper: name.clone(),
                server: server.to_string(),
                message,
            })
        })?;
        return Ok(answer.map(|(username, secret)| Found {
            credentials: from_helper(username, secret),
            origin: format!("docker-credential-{name} ({why})"),
        }));
    }
    let entry = cfg.auths.get(server).or_else(|| {
        // Legacy files key entries by URL (`https://host/v1/`); oras-go matches on the
        // host part of each key.
        cfg.auths.iter().find(|(k, _)| to_hostname(k) == server).map(|(_, v)| v)
    });
    let Some(entry) = entry else { return Ok(None) };
    let credentials =
        entry.credentials().map_err(|reason| LookupError::File(format!("the entry for {server}: {reason}")))?;
    Ok((!credentials.is_empty()).then(|| Found { credentials, origin: path.to_string() }))
}

/// docker-credential-helpers return the secret of an identity token under the user name
/// `<token>` (docker cli, credentials/native_store.go).
fn from_helper(username: String, secret: String) -> Credentials {
    if username == "<token>" {
        Credentials { identity_token: secret, ..Credentials::default() }
    } else {
        Credentials::basic(username, secret)
    }
}

fn to_hostname(key: &str) -> &str {
    let key = key.strip_prefix("http://").or_else(|| key.strip_prefix("https://")).unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The parts of a docker-format config.json that carry credentials; other keys ignored.
#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl AuthEntry {
    /// oras-go's `AuthConfig.Credential`: `auth`, when present, overrides
    /// `username`/`password`.
    fn credentials(&self) -> Result<Credentials, String> {
        let mut c = Credentials {
            username: self.username.clone().unwrap_or_default(),
            password: self.password.clone().unwrap_or_default(),
            identity_token: self.identitytoken.clone().unwrap_or_default(),
            registry_token: self.registrytoken.clone().unwrap_or_default(),
        };
        if let Some(auth) = self.auth.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            let engine = base64::engine::general_purpose::STANDARD;
            let decoded = engine
                .decode(auth)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth))
                .map_err(|_| "`auth` is not base64".to_string())?;
            let decoded = String::from_utf8(decoded).map_err(|_| "`auth` is not UTF-8 text".to_string())?;
            // The decoded text is `user:password`: never put it in a message.
            let (user, pass) = decoded.split_once(':').ok_or("`auth` is not base64 of USER:PASSWORD")?;
            c.username = user.to_string();
            c.password = pass.to_string();
        }
        Ok(c)
    }
}

/// How to run a helper for [`HelperFn`]: the program and its arguments; the server
/// address goes on stdin (the docker-credential-helpers protocol).
/// `docker-credential-<helper> get` for `server` (registry credentials kept by a
/// credential store), through the process layer.
pub fn ask_helper(
    runner: &crate::helm::Runner,
    helper: &str,
    server: &str,
) -> Result<Option<(String, String)>, String> {
    let (program, args) = helper_invocation(helper);
    let inv = crate::helm::Invocation::new(format!("ask docker-credential-{helper} for {server}"), program, args);
    match runner.run_with_input(&inv, Some(server.as_bytes())) {
        Ok(out) => parse_helper_output(true, &out.stdout),
        Err(crate::helm::ExecError::Failed { stdout, .. }) => parse_helper_output(false, &stdout),
        Err(e) => Err(e.to_string()),
    }
}

pub fn helper_invocation(helper: &str) -> (String, Vec<String>) {
    (format!("docker-credential-{helper}"), vec!["get".to_string()])
}

/// Reads what `docker-credential-<helper> get` printed: JSON
/// `{"ServerURL","Username","Secret"}` on success; on failure the helper prints a message
/// on stdout, and "credentials not found" means no credentials rather than an error.
pub fn parse_helper_output(success: bool, stdout: &str) -> Result<Option<(String, String)>, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let text = stdout.trim();
    if !success {
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(if text.is_empty() { "it exited with an error".to_string() } else { text.to_string() });
    }
    let answer: Answer = serde_json::from_str(text).map_err(|_| "its output is not the expected JSON".to_string())?;
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some((answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const HOST: &str = "127.0.0.1:6000";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn helm(contents: &str) -> ConfigFile {
        ConfigFile {
            path: "/h/helm/registry/config.json".into(),
            kind: ConfigKind::Helm,
            contents: Some(contents.into()),
        }
    }

    fn docker(contents: &str) -> ConfigFile {
        ConfigFile { path: "/h/.docker/config.json".into(), kind: ConfigKind::Docker, contents: Some(contents.into()) }
    }

    fn missing(kind: ConfigKind) -> ConfigFile {
        ConfigFile { path: "/nowhere/config.json".into(), kind, contents: None }
    }

    fn look(configs: &[ConfigFile]) -> Result<Option<Found>, CatalogError> {
        lookup(HOST, configs, None, &no_helper)
    }

    #[test]
    fn helm_registry_config_as_helm_login_writes_it() {
        // Byte for byte what `helm registry login 127.0.0.1:6000 -u alice` wrote (checked with helm 3.19.0 and 4.1.4).
        let text = "{\n\t\"auths\": {\n\t\t\"127.0.0.1:6000\": {\n\t\t\t\"auth\": \"YWxpY2U6czNjcmV0\"\n\t\t}\n\t}\n}";
        let found = look(&[helm(text)]).unwrap().unwrap();
        assert_eq!(found.credentials, Credentials::basic("alice", "s3cret"));
        assert_eq!(found.origin, "/h/helm/registry/config.json");
    }

    #[test]
    fn helm_config_wins_over_docker() {
        let h = helm(&format!(r#"{{"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#, b64("helm-user:p1")));
        let d = docker(&format!(r#"{{"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#, b64("docker-user:p2")));
        assert_eq!(look(&[h, d]).unwrap().unwrap().credentials.username, "helm-user");
    }

    #[test]
    fn falls_back_to_docker_config_with_username_and_password() {
        let h = helm(r#"{"auths":{"other.example":{"auth":"eDp5"}}}"#);
        let d = docker(&format!(
            r#"{{"auths":{{"{HOST}":{{"username":"bob","password":"pw"}}}},"HttpHeaders":{{"X":"y"}}}}"#
        ));
        let found = look(&[h.clone(), d.clone()]).unwrap().unwrap();
        assert_eq!(found.credentials, Credentials::basic("bob", "pw"));
        assert_eq!(found.origin, "/h/.docker/config.json");
        // Also when helm's file does not exist at all.
        assert!(look(&[missing(ConfigKind::Helm), d]).unwrap().is_some());
    }

    #[test]
    fn legacy_url_keys_match_by_host() {
        let d = docker(&format!(r#"{{"auths":{{"https://{HOST}/v1/":{{"auth":"{}"}}}}}}"#, b64("carol:pw")));
        assert_eq!(look(&[d]).unwrap().unwrap().credentials.username, "carol");
    }

    #[test]
    fn identity_and_registry_tokens() {
        let d = docker(&format!(r#"{{"auths":{{"{HOST}":{{"auth":"","identitytoken":"refresh-123"}}}}}}"#));
        let c = look(&[d]).unwrap().unwrap().credentials;
        assert_eq!(c.identity_token, "refresh-123");
        assert!(!c.has_basic());
        let d = docker(&format!(r#"{{"auths":{{"{HOST}":{{"registrytoken":"access-9"}}}}}}"#));
        assert_eq!(look(&[d]).unwrap().unwrap().credentials.registry_token, "access-9");
    }

    #[test]
    fn nothing_stored() {
        assert!(look(&[]).unwrap().is_none());
        assert!(look(&[missing(ConfigKind::Helm), missing(ConfigKind::Docker)]).unwrap().is_none());
        assert!(look(&[helm("{}"), docker(r#"{"auths":{}}"#)]).unwrap().is_none());
        // An empty entry (docker writes these next to a credsStore) is no credential.
        assert!(look(&[docker(&format!(r#"{{"auths":{{"{HOST}":{{}}}}}}"#))]).unwrap().is_none());
    }

    #[test]
    fn cred_helpers_and_creds_store_go_through_the_callers_closure() {
        let calls = RefCell::new(Vec::new());
        let fake = |helper: &str, server: &str| -> Result<Option<(String, String)>, String> {
            calls.borrow_mut().push((helper.to_string(), server.to_string()));
            match helper {
                "ecr-login" => Ok(Some(("AWS".into(), "ecr-password".into()))),
                "desktop" => Ok(Some(("<token>".into(), "refresh-abc".into()))),
                _ => Ok(None),
            }
        };
        let d = docker(&format!(
            r#"{{"credsStore":"desktop","credHelpers":{{"{HOST}":"ecr-login"}},"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#,
            b64("ignored:x")
        ));
        let found = lookup(HOST, &[d], None, &fake).unwrap().unwrap();
        assert_eq!(found.credentials, Credentials::basic("AWS", "ecr-password"));
        assert_eq!(found.origin, "docker-credential-ecr-login (credHelpers in /h/.docker/config.json)");
        assert_eq!(calls.borrow().as_slice(), [("ecr-login".to_string(), HOST.to_string())]);

        // credsStore applies to hosts without their own helper; `<token>` means an
        // identity token.
        let d = docker(r#"{"credsStore":"desktop"}"#);
        let found = lookup(HOST, &[d], None, &fake).unwrap().unwrap();
        assert_eq!(found.credentials.identity_token, "refresh-abc");
        assert!(found.credentials.username.is_empty());

        // A helper that knows nothing falls through to the next file, as oras-go does.
        let h = helm(r#"{"credsStore":"pass"}"#);
        let d = docker(&format!(r#"{{"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#, b64("dave:pw")));
        assert_eq!(lookup(HOST, &[h, d], None, &fake).unwrap().unwrap().credentials.username, "dave");
    }

    #[test]
    fn default_store_is_used_only_for_files_without_auth() {
        let fake = |helper: &str, _: &str| Ok(Some((format!("from-{helper}"), "pw".to_string())));
        // Nothing configured in helm's file: the default helper answers.
        let found = lookup(HOST, &[helm("{}")], Some("secretservice"), &fake).unwrap().unwrap();
        assert_eq!(found.credentials.username, "from-secretservice");
        // An `auths` entry for any host means the file is configured: no default helper.
        let h = helm(&format!(r#"{{"auths":{{"elsewhere":{{"auth":"{}"}}}}}}"#, b64("x:y")));
        assert!(lookup(HOST, &[h], Some("secretservice"), &fake).unwrap().is_none());
    }

    #[test]
    fn helper_failures_and_bad_files_are_errors_without_secrets() {
        let failing = |_: &str, _: &str| Err("keychain locked".to_string());
        let err = lookup(HOST, &[docker(r#"{"credsStore":"osxkeychain"}"#)], None, &failing).unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-osxkeychain failed for 127.0.0.1:6000: keychain locked"),
            "{err}"
        );

        let err = look(&[helm("{not json")]).unwrap_err().to_string();
        assert!(err.contains("/h/helm/registry/config.json") && err.contains("not valid JSON"), "{err}");

        // `auth` that decodes to no `:`: the message must not echo the decoded secret.
        let h = helm(&format!(r#"{{"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#, b64("justasecret")));
        let err = look(&[h]).unwrap_err().to_string();
        assert!(err.contains("USER:PASSWORD") && !err.contains("justasecret"), "{err}");

        let h = helm(r#"{"credHelpers":{"127.0.0.1:6000":"../../bin/sh"}}"#);
        assert!(look(&[h]).unwrap_err().to_string().contains("not a plain name"));
    }

    #[test]
    fn malformed_docker_config_is_ignored_like_helm() {
        let found = look(&[docker("{oops"), helm(&format!(r#"{{"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#, b64("e:f")))])
            .unwrap();
        assert_eq!(found.unwrap().credentials.username, "e");
    }

    #[test]
    fn docker_hub_uses_the_legacy_index_key() {
        let d = docker(&format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#, b64("hub:pw")));
        for host in ["docker.io", "registry-1.docker.io"] {
            assert_eq!(
                lookup(host, std::slice::from_ref(&d), None, &no_helper).unwrap().unwrap().credentials.username,
                "hub"
            );
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let c = Credentials { identity_token: "tok-SECRET".into(), ..Credentials::basic("alice", "pw-SECRET") };
        let shown = format!("{c:?} {:?}", Found { credentials: c.clone(), origin: "f".into() });
        assert!(shown.contains("alice") && shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn file_locations_follow_helm_and_docker() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let home = Path::new("/home/op");
        let files = CredentialFiles::from_env(
            env(&[("HELM_REGISTRY_CONFIG", "/x/reg.json"), ("DOCKER_CONFIG", "/d")]),
            Some(home),
        );
        assert_eq!(files.helm_config, Path::new("/x/reg.json"));
        assert_eq!(files.docker_config.as_deref(), Some(Path::new("/d/config.json")));
        assert_eq!(files.default_store, None, "no PATH, no helper");

        let files = CredentialFiles::from_env(env(&[("XDG_CONFIG_HOME", "/xdg")]), Some(home));
        assert_eq!(files.helm_config, Path::new("/xdg/helm/registry/config.json"));
        assert_eq!(files.docker_config.as_deref(), Some(Path::new("/home/op/.docker/config.json")));

        let files = CredentialFiles::from_env(env(&[("HELM_CONFIG_HOME", "/hc"), ("HELM_REGISTRY_CONFIG", "")]), None);
        assert_eq!(files.helm_config, Path::new("/hc/registry/config.json"));
        assert_eq!(files.docker_config, None);

        if !cfg!(target_os = "macos") {
            let files = CredentialFiles::from_env(env(&[]), Some(home));
            assert_eq!(files.helm_config, Path::new("/home/op/.config/helm/registry/config.json"));
        }
    }

    #[test]
    fn default_store_needs_the_helper_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(default_store(Some(dir.path().as_os_str())), None);
        let helper = dir.path().join(if cfg!(target_os = "macos") {
            "docker-credential-osxkeychain"
        } else {
            "docker-credential-secretservice"
        });
        std::fs::write(&helper, "#!/bin/sh\n").unwrap();
        assert_eq!(default_store(Some(dir.path().as_os_str())), None, "not executable yet");
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(default_store(Some(dir.path().as_os_str())).is_some());
    }

    #[test]
    fn reads_real_files_and_skips_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let files = CredentialFiles {
            helm_config: dir.path().join("helm/registry/config.json"),
            docker_config: Some(dir.path().join("docker/config.json")),
            default_store: None,
        };
        assert!(find(HOST, &files, &no_helper).unwrap().is_none());
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(
            dir.path().join("docker/config.json"),
            format!(r#"{{"auths":{{"{HOST}":{{"auth":"{}"}}}}}}"#, b64("f:g")),
        )
        .unwrap();
        assert_eq!(find(HOST, &files, &no_helper).unwrap().unwrap().credentials, Credentials::basic("f", "g"));
    }

    #[test]
    fn helper_output() {
        let ok = r#"{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}"#;
        assert_eq!(parse_helper_output(true, ok).unwrap(), Some(("u".into(), "s".into())));
        assert_eq!(parse_helper_output(false, "credentials not found in native keychain\n").unwrap(), None);
        assert_eq!(parse_helper_output(false, "dbus: no session").unwrap_err(), "dbus: no session");
        assert!(parse_helper_output(true, "garbage").is_err());
        assert_eq!(helper_invocation("pass"), ("docker-credential-pass".to_string(), vec!["get".to_string()]));
    }
}
