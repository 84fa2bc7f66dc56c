//! Chart versions from an OCI registry: the distribution API's tag list.
//!
//! helm has no command that prints an OCI chart's tags (`helm search repo oci://…` finds
//! nothing; it lists tags only internally, to resolve a version constraint), so this module
//! asks the registry itself: `GET /v2/<repository>/tags/list`, following `Link: <…>;
//! rel="next"` pages, authenticating as oras-go does for helm — anonymously first, then on
//! `401` by the `WWW-Authenticate` challenge: `Basic` with the stored user and password,
//! or `Bearer` through the token service named by `realm` (basic credentials, an identity
//! token as an OAuth2 refresh token, or anonymously). Tags become versions the way helm
//! reads them: `_` stands for `+`, tags that are not semver are skipped.
//!
//! It owns HTTP to registries and nothing else: no processes, no printing, no reading of
//! credential files. Credentials come from a caller's [`CredentialsFn`], asked only when
//! the registry challenges, as helm does: a public registry must work even when a
//! credential helper is locked or missing. Every request
//! has a timeout. Credentials go only to the registry host and to the token realm it
//! names; redirects never carry them (ureq's default), and no error repeats them.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::CatalogError;
use super::credentials::{Credentials, Found};

/// Supplies the registry's credentials when it asks for them (usually
/// [`super::credentials::find`] for the registry host); `Ok(None)` means anonymous.
pub type CredentialsFn<'a> = dyn Fn() -> Result<Option<Found>, CatalogError> + 'a;

/// A [`CredentialsFn`] for anonymous access.
pub fn anonymous() -> Result<Option<Found>, CatalogError> {
    Ok(None)
}
use crate::plan::Available;
use crate::version::ChartVersion;

/// How to talk to registries.
#[derive(Clone, Debug)]
pub struct OciOptions {
    /// `http://` instead of `https://` (helm's `--plain-http`).
    pub plain_http: bool,
    /// Limit for each request as a whole, so an unresponsive registry cannot hang a run.
    pub timeout: Duration,
    /// `n` asked for per page; `None` lets the registry choose. 100 is accepted by every
    /// registry we know of (some reject larger `n` with `PAGINATION_NUMBER_INVALID`).
    pub page_size: Option<usize>,
    /// Stop following `Link` after this many pages (a registry that loops must not spin
    /// forever).
    pub max_pages: usize,
}

impl Default for OciOptions {
    fn default() -> OciOptions {
        OciOptions { plain_http: false, timeout: Duration::from_secs(30), page_size: Some(100), max_pages: 1000 }
    }
}

/// The versions a repository's tags name, oldest first (helm's reading of tags:
/// `_` → `+`, non-semver tags skipped).
pub fn list_versions(
    registry: &str,
    repository: &str,
    credentials: &CredentialsFn<'_>,
    options: &OciOptions,
) -> Result<Vec<Available>, CatalogError> {
    let tags = list_tags(registry, repository, credentials, options)?;
    Ok(versions_from_tags(&tags))
}

/// Turns tags into versions: unparsable tags are dropped (helm ignores them too), the
/// rest sorted oldest first; two tags naming one version (`1.2.3`, `v1.2.3`) keep the
/// first spelling seen.
pub fn versions_from_tags(tags: &[String]) -> Vec<Available> {
    let mut versions: Vec<ChartVersion> = tags.iter().filter_map(|t| ChartVersion::parse(t).ok()).collect();
    versions.sort();
    versions.dedup();
    versions.into_iter().map(Available::new).collect()
}

/// Every tag of `registry/repository`, in the order the registry listed them.
pub fn list_tags(
    registry: &str,
    repository: &str,
    credentials: &CredentialsFn<'_>,
    options: &OciOptions,
) -> Result<Vec<String>, CatalogError> {
    let mut session = Session::new(registry, repository, credentials, options);
    let origin = session.origin.clone();
    let mut url = format!("{origin}/v2/{repository}/tags/list");
    if let Some(n) = options.page_size {
        url.push_str(&format!("?n={n}"));
    }
    let mut tags = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..options.max_pages.max(1) {
        seen.insert(url.clone());
        let (page, next) = session.page(&url)?;
        tags.extend(page);
        let Some(link) = next else { return Ok(tags) };
        let next_url = resolve_link(&origin, &url, &link)
            .map_err(|reason| CatalogError::BadResponse { url: url.clone(), reason })?;
        if seen.contains(&next_url) {
            return Err(CatalogError::BadResponse {
                url,
                reason: format!("the next-page link points back to {next_url}"),
            });
        }
        url = next_url;
    }
    Err(CatalogError::BadResponse {
        url,
        reason: format!("the tag list goes on for more than {} pages", options.max_pages),
    })
}

fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Docker Hub's registry API lives on `registry-1.docker.io` (oras-go maps it too).
fn api_host(registry: &str) -> &str {
    if registry == "docker.io" { "registry-1.docker.io" } else { registry }
}

/// How the current `Authorization` header was obtained, for the error after a refusal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Anonymous,
    Basic,
    BearerWithCredentials,
}

struct Session<'a> {
    agent: ureq::Agent,
    origin: String,
    registry: &'a str,
    repository: &'a str,
    lookup: &'a CredentialsFn<'a>,
    /// What `lookup` gave, once a challenge made us ask.
    found: Option<Found>,
    /// Sent on every request once a challenge has been answered (pages share the scope).
    authorization: Option<String>,
    /// `Some` once the challenge was answered: a second `401` is then final.
    auth_attempt: Option<Attempt>,
    plain_http: bool,
}

impl<'a> Session<'a> {
    /// A session with `registry` for `repository`: no request made yet; the first `401`
    /// is answered from `credentials`.
    fn new(
        registry: &'a str,
        repository: &'a str,
        credentials: &'a CredentialsFn<'a>,
        options: &OciOptions,
    ) -> Session<'a> {
        let mut config = ureq::Agent::config_builder();
        if is_loopback(api_host(registry)) {
            // Go's proxy rules, which helm follows, never proxy loopback addresses; ureq would
            // send them to HTTP(S)_PROXY unless NO_PROXY says otherwise.
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("helm-safe-upgrade/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let scheme = if options.plain_http { "http" } else { "https" };
        Session {
            agent,
            origin: format!("{scheme}://{}", api_host(registry)),
            registry,
            repository,
            lookup: credentials,
            found: None,
            authorization: None,
            auth_attempt: None,
            plain_http: options.plain_http,
        }
    }
}

/// The longest chart config read: Chart.yaml's metadata as JSON is a few KiB; a registry
/// sending more is not answering the question.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The `appVersion` each of `versions` packages, from its manifest's config (helm writes
/// the chart's `Chart.yaml` metadata there as JSON): two requests per version, on one
/// session, so a registry's challenge is answered once. None for a chart that sets none.
/// Policies counting in app versions need these; tags alone do not say them.
pub fn app_versions(
    registry: &str,
    repository: &str,
    versions: &[ChartVersion],
    credentials: &CredentialsFn<'_>,
    options: &OciOptions,
) -> Result<Vec<(ChartVersion, Option<String>)>, CatalogError> {
    let mut session = Session::new(registry, repository, credentials, options);
    let origin = session.origin.clone();
    let mut found = Vec::with_capacity(versions.len());
    for version in versions {
        // OCI tags spell `+` as `_`; the original spelling is the tag listed.
        let url = format!("{origin}/v2/{repository}/manifests/{}", version.original());
        let manifest = session.json(&url, "application/vnd.oci.image.manifest.v1+json")?;
        let digest = manifest["config"]["digest"].as_str().unwrap_or_default();
        // Only `sha256:` and 64 lowercase hex digits go into the blob's URL.
        if crate::digest::sha256_hex(digest).is_none() {
            return Err(CatalogError::BadResponse { url, reason: "the manifest names no sha256 config digest".into() });
        }
        let config = session.json(&format!("{origin}/v2/{repository}/blobs/{digest}"), "application/json")?;
        let app = config["appVersion"].as_str().filter(|a| !a.is_empty()).map(str::to_string);
        found.push((version.clone(), app));
    }
    Ok(found)
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Session<'_> {
    fn creds(&self) -> Option<&Credentials> {
        self.found.as_ref().map(|f| &f.credentials).filter(|c| !c.is_empty())
    }

    fn origin_of_creds(&self) -> String {
        self.found.as_ref().map(|f| f.origin.clone()).unwrap_or_default()
    }

    fn get(&self, url: &str, accept: &str) -> Result<ureq::http::Response<ureq::Body>, CatalogError> {
        let mut req = self.agent.get(url).header("Accept", accept);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        req.call().map_err(|e| self.transport(url, e))
    }

    /// `GET url`, answering a `401` challenge once: the status, the `Link` to a next page,
    /// and the body.
    fn call(&mut self, url: &str, accept: &str) -> Result<(u16, Option<String>, String), CatalogError> {
        let mut resp = self.get(url, accept)?;
        if resp.status() == 401 && self.auth_attempt.is_none() {
            let challenges: Vec<String> = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
            self.answer(&challenges)?;
            resp = self.get(url, accept)?;
        }
        let status = resp.status().as_u16();
        let link = resp.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).find_map(parse_next_link);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_CONFIG_BYTES.max(16 * 1024 * 1024))
            .read_to_string()
            .map_err(|e| self.transport(url, e))?;
        Ok((status, link, body))
    }

    /// A JSON document (a manifest, a chart's config).
    fn json(&mut self, url: &str, accept: &str) -> Result<serde_json::Value, CatalogError> {
        let (status, _, body) = self.call(url, accept)?;
        if status != 200 {
            return Err(self.refused(status, url, &body));
        }
        if body.len() as u64 > MAX_CONFIG_BYTES {
            return Err(CatalogError::BadResponse {
                url: url.to_string(),
                reason: "the document is over 1 MiB".into(),
            });
        }
        serde_json::from_str(&body)
            .map_err(|e| CatalogError::BadResponse { url: url.to_string(), reason: format!("not JSON ({e})") })
    }

    /// One page: its tags and the `Link` to the next, answering a `401` challenge once.
    fn page(&mut self, url: &str) -> Result<(Vec<String>, Option<String>), CatalogError> {
        let (status, link, body) = self.call(url, "application/json")?;
        if status != 200 {
            return Err(self.refused(status, url, &body));
        }
        let list: TagList = serde_json::from_str(&body)
            .map_err(|e| CatalogError::BadResponse { url: url.to_string(), reason: format!("not a tag list ({e})") })?;
        Ok((list.tags.unwrap_or_default(), link))
    }

    /// The error for an answer other than `200`.
    fn refused(&self, status: u16, url: &str, body: &str) -> CatalogError {
        match status {
            401 => match self.auth_attempt {
                Some(Attempt::Basic) => {
                    CatalogError::CredentialsRefused { registry: self.registry.into(), origin: self.origin_of_creds() }
                }
                Some(Attempt::BearerWithCredentials) => CatalogError::Denied {
                    registry: self.registry.into(),
                    repository: self.repository.into(),
                    origin: Some(self.origin_of_creds()),
                },
                _ => CatalogError::CredentialsRequired { registry: self.registry.into() },
            },
            403 => CatalogError::Denied {
                registry: self.registry.into(),
                repository: self.repository.into(),
                origin: self.creds().map(|_| self.origin_of_creds()),
            },
            404 => CatalogError::RepositoryNotFound {
                registry: self.registry.into(),
                repository: self.repository.into(),
                message: registry_message(body),
            },
            other => CatalogError::Http {
                what: format!("registry {}", self.registry),
                url: url.to_string(),
                status: other,
                message: registry_message(body),
            },
        }
    }

    /// Sets `authorization` from the challenges of a `401`.
    fn answer(&mut self, challenges: &[String]) -> Result<(), CatalogError> {
        let challenge = challenges.iter().find_map(|c| parse_challenge(c));
        self.found = (self.lookup)()?;
        let creds = self.creds().cloned();
        match challenge {
            Some(Challenge::Basic) => {
                let Some(c) = creds.filter(Credentials::has_basic) else {
                    self.auth_attempt = Some(Attempt::Anonymous);
                    return Err(CatalogError::CredentialsRequired { registry: self.registry.into() });
                };
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
                self.authorization = Some(format!("Basic {pair}"));
                self.auth_attempt = Some(Attempt::Basic);
            }
            Some(Challenge::Bearer { realm, service, scope }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let token = self.token(&realm, service.as_deref(), &scope, creds.as_ref())?;
                self.authorization = Some(format!("Bearer {token}"));
                self.auth_attempt =
                    Some(if creds.is_some() { Attempt::BearerWithCredentials } else { Attempt::Anonymous });
            }
            Some(Challenge::Other(scheme)) => {
                return Err(CatalogError::UnsupportedAuth { registry: self.registry.into(), scheme });
            }
            None => {
                // A 401 without a usable challenge: nothing to answer with.
                self.auth_attempt = Some(Attempt::Anonymous);
                return Err(CatalogError::CredentialsRequired { registry: self.registry.into() });
            }
        }
        Ok(())
    }

    /// A token realm must be http(s), and an https registry must not send credentials to a
    /// plain-text token service (they would travel in the clear).
    fn check_realm(&self, realm: &str, with_credentials: bool) -> Result<(), CatalogError> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(CatalogError::BadResponse {
                url: self.origin.clone(),
                reason: format!("the token realm {realm:?} is not an http(s) URL"),
            });
        }
        if realm.starts_with("http://") && !self.plain_http && with_credentials {
            return Err(CatalogError::BadResponse {
                url: self.origin.clone(),
                reason: format!(
                    "the token realm {realm} is plain HTTP while the registry is HTTPS; refusing to send credentials there"
                ),
            });
        }
        Ok(())
    }

    /// The token request: an OAuth2 refresh-token grant for an identity token, else a GET
    /// with Basic credentials when there are any.
    fn ask_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        match creds {
            Some(c) if !c.identity_token.is_empty() => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.identity_token.as_str()),
                    ("scope", scope),
                    ("client_id", "helm-safe-upgrade"),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                self.agent.post(realm).send_form(form)
            }
            _ => {
                let mut req = self.agent.get(realm).query("scope", scope);
                if let Some(s) = service {
                    req = req.query("service", s);
                }
                if let Some(c) = creds.filter(|c| c.has_basic()) {
                    let pair =
                        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
                    req = req.header("Authorization", format!("Basic {pair}"));
                }
                req.call()
            }
        }
    }

    /// A bearer token from the realm, as oras-go asks for one: a stored registry token is
    /// used as it is; an identity token is exchanged by an OAuth2 refresh-token grant;
    /// otherwise `GET realm?service=…&scope=…` with Basic credentials if there are any
    /// (anonymous tokens are how public repositories are pulled).
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Result<String, CatalogError> {
        if let Some(c) = creds.filter(|c| !c.registry_token.is_empty()) {
            return Ok(c.registry_token.clone());
        }
        self.check_realm(realm, creds.is_some())?;
        let result = self.ask_token(realm, service, scope, creds);
        let mut resp = result.map_err(|e| self.transport(realm, e))?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().map_err(|e| self.transport(realm, e))?;
        match status {
            200 => {}
            401 | 403 if creds.is_some() => {
                return Err(CatalogError::CredentialsRefused {
                    registry: self.registry.into(),
                    origin: self.origin_of_creds(),
                });
            }
            401 | 403 => return Err(CatalogError::CredentialsRequired { registry: self.registry.into() }),
            other => {
                return Err(CatalogError::Http {
                    what: format!("token service of registry {}", self.registry),
                    url: realm.to_string(),
                    status: other,
                    message: registry_message(&body),
                });
            }
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        // The body holds the token: its parse error must not quote it.
        let answer: TokenAnswer = serde_json::from_str(&body).map_err(|_| CatalogError::BadResponse {
            url: realm.to_string(),
            reason: "the token service's answer is not JSON".into(),
        })?;
        answer.token.or(answer.access_token).filter(|t| !t.is_empty()).ok_or_else(|| CatalogError::BadResponse {
            url: realm.to_string(),
            reason: "the token service's answer has neither `token` nor `access_token`".into(),
        })
    }

    fn transport(&self, url: &str, e: ureq::Error) -> CatalogError {
        let hint = match &e {
            ureq::Error::Timeout(_) => {
                "the registry did not answer in time; check the network or try again".to_string()
            }
            _ if !self.plain_http => format!(
                "check the host and port, and HTTPS_PROXY/NO_PROXY; if {} serves plain HTTP (no TLS), use --plain-http",
                self.registry
            ),
            _ => "check the host and port, and HTTP_PROXY/NO_PROXY".to_string(),
        };
        CatalogError::Transport { url: url.to_string(), reason: e.to_string(), hint }
    }
}

/// The first message of a distribution-spec error body (`{"errors":[{"code","message"}]}`),
/// shortened: registries are trusted to not echo credentials, but not to be brief.
fn registry_message(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Errors = serde_json::from_str(body).ok()?;
    let first = parsed.errors.into_iter().next()?;
    let text = match (first.code.is_empty(), first.message.is_empty()) {
        (false, false) => format!("{}: {}", first.code, first.message),
        (false, true) => first.code,
        (true, false) => first.message,
        (true, true) => return None,
    };
    Some(text.chars().take(200).collect())
}

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Any other scheme, named for the error message.
    Other(String),
}

/// Parses one `WWW-Authenticate` value: `Basic realm="…"` or
/// `Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params, values quoted or not,
/// quoted values may hold commas, e.g. a scope naming two actions).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let params = parse_auth_params(rest);
    let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") }),
        _ => Some(Challenge::Other(scheme.to_string())),
    }
}

fn parse_auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue; // a bare token68; not used by registries
        }
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.push((name, value));
    }
}

/// The target of the `rel="next"` link in a `Link` header value, if any.
pub fn parse_next_link(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let params_and_more = &after[end + 1..];
        // This link's parameters run until the next `<`.
        let params = params_and_more.split('<').next().unwrap_or("");
        let is_next = params.split(';').skip(1).any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = params_and_more;
    }
    None
}

/// Resolves a `Link` target against the page it came from. Absolute links must stay on
/// the registry's origin, since the next request carries the registry's authorization.
fn resolve_link(origin: &str, current: &str, link: &str) -> Result<String, String> {
    if link.starts_with("http://") || link.starts_with("https://") {
        let same = link.strip_prefix(origin).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
        return if same { Ok(link.to_string()) } else { Err(format!("the next-page link {link} leaves {origin}")) };
    }
    if link.starts_with('/') {
        return Ok(format!("{origin}{link}"));
    }
    if link.starts_with('?') {
        let path = current.split('?').next().unwrap_or(current);
        return Ok(format!("{path}{link}"));
    }
    Err(format!("cannot follow the next-page link {link:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(parse_challenge(r#"Basic realm="chart-standin registry""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/bsr:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:acme/bsr:pull".into()),
            })
        );
        // Commas inside quotes, spaces around `=` and `,`, unquoted values, escapes.
        assert_eq!(
            parse_challenge(
                r#"Bearer realm = "https://auth.docker.io/token" , service=registry.docker.io, scope="repository:a/b:pull,push", error="insufficient_\"scope\"""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        // No scope in the challenge (some registries on /v2/): the client supplies one.
        assert_eq!(
            parse_challenge(r#"Bearer realm="http://127.0.0.1:1/token""#),
            Some(Challenge::Bearer { realm: "http://127.0.0.1:1/token".into(), service: None, scope: None })
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "bearer without realm is unusable");
        assert_eq!(parse_challenge("Negotiate abc=="), Some(Challenge::Other("Negotiate".into())));
        assert_eq!(parse_challenge("   "), None);
    }

    #[test]
    fn next_links() {
        assert_eq!(
            parse_next_link(r#"</v2/charts/bsr/tags/list?n=2&last=1.0.4>; rel="next""#).as_deref(),
            Some("/v2/charts/bsr/tags/list?n=2&last=1.0.4")
        );
        assert_eq!(
            parse_next_link(r#"<https://r.example/v2/a/tags/list?last=x&n=5>; rel=next"#).as_deref(),
            Some("https://r.example/v2/a/tags/list?last=x&n=5")
        );
        assert_eq!(
            parse_next_link(r#"</first>; rel="prev", </v2/a/tags/list?last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b")
        );
        assert_eq!(parse_next_link(r#"</v2/a/tags/list?last=b>; rel="prev""#), None);
        assert_eq!(parse_next_link(""), None);
        assert_eq!(parse_next_link("garbage"), None);
    }

    #[test]
    fn links_resolve_on_the_registry_only() {
        let o = "http://127.0.0.1:5000";
        let cur = "http://127.0.0.1:5000/v2/charts/bsr/tags/list?n=2";
        assert_eq!(
            resolve_link(o, cur, "/v2/charts/bsr/tags/list?n=2&last=1.0.4").unwrap(),
            "http://127.0.0.1:5000/v2/charts/bsr/tags/list?n=2&last=1.0.4"
        );
        assert_eq!(
            resolve_link(o, cur, "?n=2&last=x").unwrap(),
            "http://127.0.0.1:5000/v2/charts/bsr/tags/list?n=2&last=x"
        );
        assert_eq!(
            resolve_link(o, cur, "http://127.0.0.1:5000/v2/x?last=y").unwrap(),
            "http://127.0.0.1:5000/v2/x?last=y"
        );
        assert!(resolve_link(o, cur, "http://127.0.0.1:50001/v2/x").unwrap_err().contains("leaves"));
        assert!(resolve_link(o, cur, "https://evil.example/v2/x").is_err());
        assert!(resolve_link(o, cur, "relative/path").is_err());
    }

    #[test]
    fn tags_become_sorted_versions_like_helm_reads_them() {
        let tags: Vec<String> =
            ["1.10.0", "latest", "1.2.0", "v1.9.0", "1.0.0_build.7", "sha256-abc.sig", "1.5.0-rc.1", "1.2.0"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let versions: Vec<String> =
            versions_from_tags(&tags).iter().map(|a| a.version.original().to_string()).collect();
        assert_eq!(versions, ["1.0.0_build.7", "1.2.0", "1.5.0-rc.1", "v1.9.0", "1.10.0"]);
        let build = &versions_from_tags(&tags)[0].version;
        assert_eq!(build.semver().build.as_str(), "build.7");
        assert!(versions_from_tags(&[]).is_empty());
    }

    #[test]
    fn twenty_thousand_absurd_tags_sort_and_dedup_in_linear_time() {
        let tags = crate::catalog::absurd_tags(20_000);
        let started = std::time::Instant::now();
        let versions = versions_from_tags(&tags);
        let took = started.elapsed();
        assert!(versions.windows(2).all(|w| w[0].version < w[1].version), "sorted, one entry per version");
        // The first spelling listed wins, as for two tags of one version.
        let mut first: std::collections::HashMap<semver::Version, &str> = std::collections::HashMap::new();
        for tag in &tags {
            if let Ok(v) = ChartVersion::parse(tag) {
                first.entry(v.semver().clone()).or_insert(tag.as_str());
            }
        }
        assert_eq!(versions.len(), first.len());
        assert!(versions.len() < 17_000, "the generator repeats versions: {}", versions.len());
        assert!(versions.iter().all(|a| first[a.version.semver()] == a.version.original()));
        // Loose on purpose (a debug build on a busy machine); quadratic would be minutes.
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1:5000", "localhost", "LOCALHOST:80", "[::1]:5000", "127.1.2.3"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["ghcr.io", "10.0.0.1:5000", "[2001:db8::1]:443", "localhost.example:5000"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn registry_error_bodies() {
        let body = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository charts/nope not known to registry","detail":{}}]}"#;
        assert_eq!(
            registry_message(body).as_deref(),
            Some("NAME_UNKNOWN: repository charts/nope not known to registry")
        );
        assert_eq!(registry_message("<html>"), None);
        assert_eq!(registry_message(r#"{"errors":[]}"#), None);
    }

    #[test]
    fn unreachable_registry_names_the_url_and_plain_http() {
        // A port nothing listens on: bind, read the port, drop the listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let registry = format!("127.0.0.1:{port}");
        let options = OciOptions { timeout: Duration::from_secs(5), ..OciOptions::default() };
        let err = list_tags(&registry, "charts/bsr", &anonymous, &options).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CatalogError::Transport { .. }), "{msg}");
        assert!(msg.contains(&format!("https://{registry}/v2/charts/bsr/tags/list?n=100")), "{msg}");
        assert!(msg.contains("--plain-http"), "{msg}");
    }
}
