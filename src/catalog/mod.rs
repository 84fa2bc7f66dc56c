//! Where a chart's available versions come from, for the sources helm cannot list for us.
//!
//! Owns the `--chart` reference ([`ChartSource`]: `repo/name`, `oci://host/path/name`, or
//! a directory of packaged charts) and the pure-Rust listing of two of them: OCI
//! registries through the distribution API ([`oci`], with helm's registry credentials
//! found by [`credentials`]) and directories of `*.tgz` ([`dir`]).
//!
//! [`offer::offered`] is the one dispatch over sources, for the live run and completion.
//! It spawns nothing itself: repository charts are listed by `helm search repo` and
//! docker credential helpers run through `crate::helm`. It must not print either:
//! warnings are returned as data. No error message it builds contains a password or token.

pub mod cache;
pub mod credentials;
pub mod dir;
pub mod oci;
pub mod offer;
pub mod repo;
pub mod shipped;

pub use offer::{ChartArg, Offer, OfferOptions, fill_app_versions, offered};

use std::fmt;
use std::path::{Path, PathBuf};

use crate::exit;
use crate::plan::Available;

/// Where the chart's versions come from, parsed from a `--chart` reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartSource {
    /// A chart in a repository added with `helm repo add`: `repo/name`. Listed by helm.
    Repo { repo: String, name: String },
    /// A chart in an OCI registry: `oci://registry/repository`.
    Oci {
        /// `host[:port]`, as given to `helm registry login`.
        registry: String,
        /// The repository path including the chart name, e.g. `charts/bsr`.
        repository: String,
        /// The chart name: the last path element of `repository`.
        name: String,
    },
    /// A local directory of packaged charts (`*.tgz`), for air-gapped sites.
    Dir { path: PathBuf },
}

/// The three forms, for every "not a chart source" message.
const ACCEPTED_FORMS: &str = "use REPO/CHART (a repository added with `helm repo add`), \
     oci://HOST[:PORT]/PATH/CHART, or a directory of packaged charts (/srv/charts, ./charts)";

impl ChartSource {
    /// Parses a `--chart` reference.
    ///
    /// `oci://…` is an OCI chart; a path that exists as a directory, or that starts with
    /// `/`, `./` or `../`, is a directory of packaged charts (helm, too, tries a local path
    /// before a repository chart); `repo/name` with exactly one `/` is a repository chart.
    pub fn parse(reference: &str) -> Result<ChartSource, CatalogError> {
        Self::parse_with(reference, |p| p.is_dir())
    }

    /// [`ChartSource::parse`] with the filesystem check injected, so tests do not depend
    /// on the working directory.
    fn parse_with(reference: &str, is_dir: impl Fn(&Path) -> bool) -> Result<ChartSource, CatalogError> {
        let bad =
            |reason: &str| CatalogError::BadReference { reference: reference.to_string(), reason: reason.to_string() };
        let r = reference.trim();
        if r.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(rest) = r.strip_prefix("oci://") {
            return parse_oci(rest).map_err(|reason| bad(&reason));
        }
        if let Some((scheme, _)) = r.split_once("://") {
            return Err(bad(&format!(
                "`{scheme}://` is not a chart source; for a chart repository URL run `helm repo add NAME URL` and use NAME/CHART"
            )));
        }
        let looks_like_path =
            r.starts_with('/') || r.starts_with("./") || r.starts_with("../") || r == "." || r == "..";
        if looks_like_path || is_dir(Path::new(r)) {
            return Ok(ChartSource::Dir { path: PathBuf::from(r) });
        }
        if r.chars().any(char::is_whitespace) {
            return Err(bad("it contains whitespace"));
        }
        match r.split('/').collect::<Vec<_>>().as_slice() {
            [repo, name] if !repo.is_empty() && !name.is_empty() => {
                if name.ends_with(".tgz") {
                    return Err(bad(
                        "a single chart archive is not a source of versions; give the directory that holds the archives",
                    ));
                }
                Ok(ChartSource::Repo { repo: repo.to_string(), name: name.to_string() })
            }
            [_] => Err(bad(
                "a repository chart needs its repository name (`helm repo list` shows them), e.g. myrepo/CHART",
            )),
            _ => Err(bad(
                "a repository chart is REPO/CHART with exactly one `/`; a directory must exist or start with /, ./ or ../",
            )),
        }
    }

    /// The chart's name as the reference spells it. `None` for a directory: a directory
    /// may hold several charts, and which one is meant is known only from the release
    /// (see [`dir::chart_names`]).
    pub fn chart_name(&self) -> Option<&str> {
        match self {
            ChartSource::Repo { name, .. } | ChartSource::Oci { name, .. } => Some(name),
            ChartSource::Dir { .. } => None,
        }
    }
}

/// `host[:port]/path/name` after `oci://`.
fn parse_oci(rest: &str) -> Result<ChartSource, String> {
    let rest = rest.trim_end_matches('/');
    let Some((registry, repository)) = rest.split_once('/') else {
        return Err("an OCI reference needs a chart after the registry host, e.g. oci://HOST/charts/CHART".into());
    };
    if registry.is_empty() {
        return Err("the registry host is missing".into());
    }
    if registry.contains('@') {
        // `user:pass@host` would put a secret on the command line and in logs.
        return Err("credentials do not belong in the reference; run `helm registry login HOST` instead".into());
    }
    if repository.split('/').any(str::is_empty) {
        return Err("the chart path has an empty element (`//`)".into());
    }
    if repository.chars().any(|c| c.is_whitespace() || matches!(c, '?' | '#')) {
        return Err("the chart path contains whitespace, `?` or `#`".into());
    }
    let name = repository.rsplit('/').next().unwrap_or(repository);
    if name.contains(':') || name.contains('@') {
        // Versions are chosen by the plan, so a pinned tag or digest would be ignored.
        return Err(
            "give the chart without a tag or digest (no `:VERSION` or `@sha256:…`); the plan chooses versions".into()
        );
    }
    Ok(ChartSource::Oci { registry: registry.to_string(), repository: repository.to_string(), name: name.to_string() })
}

impl fmt::Display for ChartSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartSource::Repo { repo, name } => write!(f, "{repo}/{name}"),
            ChartSource::Oci { registry, repository, .. } => write!(f, "oci://{registry}/{repository}"),
            ChartSource::Dir { path } => write!(f, "{}", path.display()),
        }
    }
}

/// What a listing found, and what it had to skip (to be shown, not fatal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Oldest first, one entry per version.
    pub available: Vec<Available>,
    /// Things skipped on the way, e.g. an unreadable archive; one line each.
    pub warnings: Vec<String>,
}

/// Everything [`list`] needs to reach an OCI registry.
pub struct OciContext<'a> {
    pub options: oci::OciOptions,
    /// Where helm's and docker's credential files are.
    pub files: credentials::CredentialFiles,
    /// Runs `docker-credential-<helper> get` for a server; see [`credentials::HelperFn`].
    pub helper: &'a credentials::HelperFn<'a>,
}

/// Lists the versions of `chart` from an OCI registry or a directory.
///
/// For [`ChartSource::Dir`], `chart` picks the chart among the directory's archives; for
/// OCI the reference names the chart already and `chart` is not consulted (checking that
/// it matches the release's chart is preflight's job). Repository sources are helm's to
/// list: they give [`CatalogError::ListedByHelm`].
pub fn list(source: &ChartSource, chart: &str, oci: &OciContext<'_>) -> Result<Listing, CatalogError> {
    match source {
        ChartSource::Repo { .. } => Err(CatalogError::ListedByHelm { reference: source.to_string() }),
        ChartSource::Oci { registry, repository, .. } => {
            let lookup = || credentials::find(registry, &oci.files, oci.helper);
            let available = oci::list_versions(registry, repository, &lookup, &oci.options)?;
            Ok(Listing { available, warnings: Vec::new() })
        }
        ChartSource::Dir { path } => dir::versions_for(path, chart),
    }
}

/// Why versions could not be listed. Messages say what is wrong and what to do, and
/// never contain a password or token.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{reference:?} is not a chart source: {reason}\nhint: {ACCEPTED_FORMS}")]
    BadReference { reference: String, reason: String },

    #[error(
        "{reference} is a repository chart; its versions are listed by helm (`helm search repo`), not by the catalog"
    )]
    ListedByHelm { reference: String },

    #[error("{0}")]
    Helm(String),

    #[error("helm finds no chart {reference}\nhint: check `helm repo list` and `helm search repo {name} --versions`")]
    NotInRepo { reference: String, name: String },

    #[error("registry {registry} refused the credentials from {origin}\nhint: run `helm registry login {registry}`")]
    CredentialsRefused { registry: String, origin: String },

    #[error(
        "registry {registry} requires credentials and none are stored for it (helm's registry config and docker's config.json were searched)\nhint: run `helm registry login {registry}`"
    )]
    CredentialsRequired { registry: String },

    #[error("registry {registry} denied pulling {repository}{with}\nhint: check that the account given to `helm registry login {registry}` may pull {repository}", with = origin.as_ref().map(|o| format!(" with the credentials from {o}")).unwrap_or_default())]
    Denied { registry: String, repository: String, origin: Option<String> },

    #[error("registry {registry} has no chart {repository}{detail}\nhint: check the reference oci://{registry}/{repository} (a chart pushed with `helm push CHART.tgz oci://{registry}/PATH` is at PATH/CHART)", detail = message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    RepositoryNotFound { registry: String, repository: String, message: Option<String> },

    #[error("registry {registry} asked for an authentication scheme this tool does not support: {scheme}")]
    UnsupportedAuth { registry: String, scheme: String },

    #[error("{what} answered {status}{detail} for {url}", detail = message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Http { what: String, url: String, status: u16, message: Option<String> },

    #[error("cannot reach {url}: {reason}\nhint: {hint}")]
    Transport { url: String, reason: String, hint: String },

    #[error("{url} sent a response this tool cannot read: {reason}")]
    BadResponse { url: String, reason: String },

    #[error(
        "cannot read registry credentials from {path}: {reason}\nhint: fix or remove the file, or run `helm registry login HOST` again"
    )]
    CredentialFile { path: String, reason: String },

    #[error(
        "credential helper docker-credential-{helper} failed for {server}: {message}\nhint: check that docker-credential-{helper} is installed and unlocked, or log in again"
    )]
    CredentialHelper { helper: String, server: String, message: String },

    #[error(
        "chart directory {path} does not exist\nhint: pass an existing directory of packaged charts (*.tgz) with --chart"
    )]
    DirMissing { path: PathBuf },

    #[error(
        "{path} is not a directory\nhint: --chart takes the directory that holds the packaged charts (*.tgz), not a single file"
    )]
    NotADir { path: PathBuf },

    #[error("cannot read chart directory {path}: {source}")]
    DirUnreadable { path: PathBuf, source: std::io::Error },

    #[error(
        "chart directory {path} holds no packaged charts (*.tgz)\nhint: copy the archives made by `helm package` (or `helm pull`) into it"
    )]
    DirEmpty { path: PathBuf },

    #[error("chart directory {path} has no archive of chart {chart:?}; it holds {}{skipped}\nhint: copy {chart}-VERSION.tgz archives into it, or pass the directory that holds them",
        if found.is_empty() { "no readable chart".to_string() } else { found.join(", ") },
        skipped = if *unreadable > 0 { format!(" ({} skipped)", crate::text::count(*unreadable, "unreadable archive", "unreadable archives")) } else { String::new() })]
    ChartNotInDir { path: PathBuf, chart: String, found: Vec<String>, unreadable: usize },
}

impl CatalogError {
    /// The documented exit code: references and directories the user gave are bad input;
    /// registries and networks failing are "anything else".
    pub fn exit_code(&self) -> i32 {
        match self {
            CatalogError::BadReference { .. }
            | CatalogError::NotInRepo { .. }
            | CatalogError::RepositoryNotFound { .. }
            | CatalogError::DirMissing { .. }
            | CatalogError::NotADir { .. }
            | CatalogError::DirEmpty { .. }
            | CatalogError::ChartNotInDir { .. } => exit::BAD_INPUT,
            _ => exit::FAILURE,
        }
    }
}

/// What a hostile source may list: `n` tags (some unparsable) with minors up to
/// `u64::MAX`, date-like minors, pre-releases, build metadata (`+` and OCI `_`) and `v`
/// prefixes; the few huge minors repeat, so one version comes spelled several ways and
/// the listings must deduplicate. Deterministic.
#[cfg(test)]
pub(crate) fn absurd_tags(n: usize) -> Vec<String> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        // xorshift64*: cheap, deterministic, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|i| {
            let huge = [u64::MAX, u64::MAX - 1, 99_999_999_999, 20_240_101, next()][(next() % 5) as usize];
            let (major, minor, patch) =
                (1 + next() % 3, if i % 2 == 0 { huge } else { next() % 10_000_000_000 }, next() % 30);
            match i % 7 {
                0 => format!("v{major}.{minor}.{patch}"),
                1 => format!("{major}.{minor}.{patch}-rc.{}", next() % 9),
                2 => format!("{major}.{minor}.{patch}_build.{}", next() % 9),
                3 => format!("{major}.{minor}.{patch}+build.{}", next() % 9),
                4 => format!("latest-{i}"),
                _ => format!("{major}.{minor}.{patch}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(r: &str) -> Result<ChartSource, CatalogError> {
        // Only `./existing` counts as an existing directory here.
        ChartSource::parse_with(r, |p| p == Path::new("charts-dir") || p == Path::new("vendor/charts"))
    }

    fn oci(registry: &str, repository: &str, name: &str) -> ChartSource {
        ChartSource::Oci { registry: registry.into(), repository: repository.into(), name: name.into() }
    }

    #[test]
    fn oci_references() {
        assert_eq!(parse("oci://ghcr.io/acme/charts/bsr").unwrap(), oci("ghcr.io", "acme/charts/bsr", "bsr"));
        assert_eq!(parse("oci://127.0.0.1:5000/charts/bsr").unwrap(), oci("127.0.0.1:5000", "charts/bsr", "bsr"));
        assert_eq!(parse("oci://registry.local/bsr/").unwrap(), oci("registry.local", "bsr", "bsr"));
        let src = parse("  oci://127.0.0.1:5000/charts/bsr ").unwrap();
        assert_eq!(src.to_string(), "oci://127.0.0.1:5000/charts/bsr");
        assert_eq!(src.chart_name(), Some("bsr"));
    }

    #[test]
    fn oci_reference_errors() {
        for (r, fragment) in [
            ("oci://ghcr.io", "needs a chart after the registry host"),
            ("oci:///charts/bsr", "registry host is missing"),
            ("oci://ghcr.io/charts//bsr", "empty element"),
            ("oci://ghcr.io/charts/bsr:1.2.0", "without a tag or digest"),
            ("oci://ghcr.io/charts/bsr@sha256:abc", "without a tag or digest"),
            ("oci://alice:s3cret@ghcr.io/charts/bsr", "helm registry login"),
        ] {
            let err = parse(r).unwrap_err().to_string();
            assert!(err.contains(fragment), "{r}: {err}");
            assert!(err.contains("oci://HOST[:PORT]/PATH/CHART"), "{r}: {err}");
        }
        // The password given in the reference is not repeated... except as the input
        // itself, which the user typed; make sure the reason at least does not add it.
        let err = parse("oci://alice:s3cret@ghcr.io/charts/bsr").unwrap_err();
        let CatalogError::BadReference { reason, .. } = err else { panic!() };
        assert!(!reason.contains("s3cret"));
    }

    #[test]
    fn directory_references() {
        for r in ["/srv/charts", "./charts", "../charts", ".", "charts-dir", "vendor/charts"] {
            let src = parse(r).unwrap();
            assert_eq!(src, ChartSource::Dir { path: PathBuf::from(r) }, "{r}");
            assert_eq!(src.chart_name(), None);
            assert_eq!(src.to_string(), r);
        }
    }

    #[test]
    fn repo_references() {
        let src = parse("demo/bsr").unwrap();
        assert_eq!(src, ChartSource::Repo { repo: "demo".into(), name: "bsr".into() });
        assert_eq!(src.chart_name(), Some("bsr"));
        assert_eq!(src.to_string(), "demo/bsr");
    }

    #[test]
    fn other_forms_are_refused_with_the_accepted_ones() {
        for (r, fragment) in [
            ("", "empty"),
            ("bsr", "needs its repository name"),
            ("a/b/c", "exactly one `/`"),
            ("demo/", "exactly one `/`"),
            ("https://charts.example.com/bsr", "helm repo add NAME URL"),
            ("demo/bsr-1.2.0.tgz", "single chart archive"),
            ("demo/my chart", "whitespace"),
        ] {
            match parse(r) {
                Ok(other) => panic!("{r:?} parsed as {other:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(fragment), "{r:?}: {msg}");
                    assert!(msg.contains("REPO/CHART") && msg.contains("oci://") && msg.contains("directory"), "{msg}");
                    assert_eq!(e.exit_code(), exit::BAD_INPUT);
                }
            }
        }
    }

    #[test]
    fn auth_errors_name_the_fix() {
        let e = CatalogError::CredentialsRefused {
            registry: "ghcr.io".into(),
            origin: "/home/a/.docker/config.json".into(),
        };
        assert_eq!(
            e.to_string(),
            "registry ghcr.io refused the credentials from /home/a/.docker/config.json\nhint: run `helm registry login ghcr.io`"
        );
        assert_eq!(e.exit_code(), exit::FAILURE);
    }
}
