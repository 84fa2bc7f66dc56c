//! The catalog against the project's chart stand-in: tag listing from the read-only OCI
//! registry (anonymous, basic, bearer, paginated, `_` for `+`, refusals) with credentials
//! found in helm's and docker's files, and the directory of the same packaged charts.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use chart_standin::{
    Credentials as StandinCreds, OciAuth, OciOptions as StandinOptions, OciRegistry, archive, fixtures,
};
use helm_safe_upgrade::catalog::credentials::{CredentialFiles, HelperFn, no_helper};
use helm_safe_upgrade::catalog::oci::{self, OciOptions};
use helm_safe_upgrade::catalog::{self, CatalogError, ChartSource, OciContext, dir};
use helm_safe_upgrade::exit;
use helm_safe_upgrade::plan::Available;

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";

fn packaged() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fixtures::package_all(dir.path()).unwrap();
    dir
}

fn start(dir: &Path, auth: OciAuth, page_size: Option<usize>) -> OciRegistry {
    OciRegistry::start(dir, StandinOptions { auth, page_size, ..StandinOptions::default() }).unwrap()
}

fn plain() -> OciOptions {
    OciOptions { plain_http: true, ..OciOptions::default() }
}

/// The fixture's versions of `chart`, oldest first, as versions.yaml lists them.
fn fixture_versions(chart: &str) -> Vec<String> {
    fixtures::versions(chart).unwrap().into_iter().map(|v| v.version).collect()
}

fn spelled(available: &[Available]) -> Vec<String> {
    available.iter().map(|a| a.version.to_string()).collect()
}

/// A credentials home: helm's registry config and docker's config under a temp dir.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: tempfile::tempdir().unwrap() }
    }
    fn files(&self) -> CredentialFiles {
        CredentialFiles {
            helm_config: self.dir.path().join("helm/registry/config.json"),
            docker_config: Some(self.dir.path().join("docker/config.json")),
            default_store: None,
        }
    }
    /// What `helm registry login HOST -u USER` writes.
    fn helm_login(&self, host: &str, user: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.write(
            "helm/registry/config.json",
            &format!("{{\n\t\"auths\": {{\n\t\t\"{host}\": {{\n\t\t\t\"auth\": \"{auth}\"\n\t\t}}\n\t}}\n}}"),
        );
    }
    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn oci_source(reg: &OciRegistry, chart: &str) -> ChartSource {
    let source = ChartSource::parse(&reg.reference(chart)).unwrap();
    assert_eq!(source.to_string(), reg.reference(chart));
    source
}

fn list_with(source: &ChartSource, home: &Home, helper: &HelperFn<'_>) -> Result<catalog::Listing, CatalogError> {
    let ctx = OciContext { options: plain(), files: home.files(), helper };
    catalog::list(source, "bsr", &ctx)
}

#[test]
fn anonymous_registry_lists_every_bsr_version() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::None, None);
    let source = oci_source(&reg, "bsr");
    let ChartSource::Oci { registry, repository, name } = &source else { panic!("{source:?}") };
    assert_eq!((registry.as_str(), repository.as_str(), name.as_str()), (reg.host().as_str(), "charts/bsr", "bsr"));

    let listing = list_with(&source, &Home::new(), &no_helper).unwrap();
    assert_eq!(spelled(&listing.available), fixture_versions("bsr"));
    assert_eq!(listing.available.len(), 12);
    assert!(spelled(&listing.available).contains(&"1.5.0-rc.1".to_string()));
    assert!(listing.available.iter().all(|a| a.app_version.is_none()), "tags carry no appVersion");

    let requests = reg.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].target, "/v2/charts/bsr/tags/list?n=100");
    assert_eq!(requests[0].auth_scheme, None);
}

#[test]
fn basic_auth_with_helm_registry_login_credentials() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::Basic(StandinCreds::new(USER, PASSWORD)), None);
    let home = Home::new();
    home.helm_login(&reg.host(), USER, PASSWORD);

    let listing = list_with(&oci_source(&reg, "coder"), &home, &no_helper).unwrap();
    assert_eq!(spelled(&listing.available), fixture_versions("coder"));

    // Anonymous first, then the Basic retry helm's own client makes (as helm's registry client does).
    let seen: Vec<(u16, Option<String>)> = reg.requests().into_iter().map(|r| (r.status, r.auth_scheme)).collect();
    assert_eq!(seen, [(401, None), (200, Some("Basic".to_string()))]);
}

#[test]
fn bearer_token_flow_with_docker_config_credentials() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::Bearer(StandinCreds::new(USER, PASSWORD)), Some(5));
    let home = Home::new();
    // Nothing in helm's file for this host: the docker fallback answers.
    home.helm_login("other.example:5000", "someone", "else");
    home.write(
        "docker/config.json",
        &format!(r#"{{"auths":{{"{}":{{"username":"{USER}","password":"{PASSWORD}"}}}}}}"#, reg.host()),
    );

    let listing = list_with(&oci_source(&reg, "bsr"), &home, &no_helper).unwrap();
    assert_eq!(spelled(&listing.available), fixture_versions("bsr"));

    let requests = reg.requests();
    let token = requests.iter().find(|r| r.target.starts_with("/token")).expect("token requested");
    assert_eq!(token.auth_scheme.as_deref(), Some("Basic"));
    assert!(
        token.target.contains("scope=repository%3Acharts%2Fbsr%3Apull")
            || token.target.contains("scope=repository:charts/bsr:pull"),
        "{}",
        token.target
    );
    assert!(token.target.contains("service=chart-standin"), "{}", token.target);
    let pages: Vec<_> = requests.iter().filter(|r| r.target.contains("/tags/list") && r.status == 200).collect();
    assert_eq!(pages.len(), 3, "12 tags in pages of 5: {requests:?}");
    assert!(pages.iter().all(|r| r.auth_scheme.as_deref() == Some("Bearer")));
    // One challenge, one token: later pages reuse it.
    assert_eq!(requests.iter().filter(|r| r.status == 401).count(), 1, "{requests:?}");
}

#[test]
fn bearer_without_credentials_says_to_log_in() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::Bearer(StandinCreds::new(USER, PASSWORD)), None);
    let err = list_with(&oci_source(&reg, "bsr"), &Home::new(), &no_helper).unwrap_err();
    assert!(matches!(err, CatalogError::CredentialsRequired { .. }), "{err:?}");
    let host = reg.host();
    assert!(err.to_string().contains(&format!("registry {host} requires credentials")), "{err}");
    assert!(err.to_string().contains(&format!("hint: run `helm registry login {host}`")), "{err}");
    // It did try: an anonymous token (which the stand-in grants nothing with), then a refusal.
    assert!(reg.requests().iter().any(|r| r.target.starts_with("/token") && r.auth_scheme.is_none()));
}

#[test]
fn pagination_follows_link_until_every_version_is_seen() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::None, Some(2));
    for page_size in [None, Some(100), Some(1)] {
        let before = reg.requests().len();
        let options = OciOptions { page_size, ..plain() };
        let tags = oci::list_tags(&reg.host(), "charts/bsr", &oci::anonymous, &options).unwrap();
        let mut expected = fixture_versions("bsr");
        expected.sort(); // the registry lists tags in lexical order
        assert_eq!(tags, expected, "page_size {page_size:?}");
        let pages = reg.requests()[before..].iter().filter(|r| r.target.contains("/tags/list")).count();
        let per_page = page_size.unwrap_or(2).min(2);
        assert_eq!(pages, 12usize.div_ceil(per_page), "page_size {page_size:?}");
    }
    let versions = oci::list_versions(&reg.host(), "charts/bsr", &oci::anonymous, &plain()).unwrap();
    assert_eq!(spelled(&versions), fixture_versions("bsr"), "sorted oldest first by semver, not lexically");
}

#[test]
fn wrong_credentials_are_refused_with_the_login_hint_and_no_secret() {
    let charts = packaged();
    for auth in [OciAuth::Basic(StandinCreds::new(USER, PASSWORD)), OciAuth::Bearer(StandinCreds::new(USER, PASSWORD))]
    {
        let reg = start(charts.path(), auth.clone(), None);
        let home = Home::new();
        home.helm_login(&reg.host(), USER, "wrong-password-XYZ");
        let err = list_with(&oci_source(&reg, "bsr"), &home, &no_helper).unwrap_err();
        let host = reg.host();
        let config = home.files().helm_config;
        assert_eq!(
            err.to_string(),
            format!(
                "registry {host} refused the credentials from {}\nhint: run `helm registry login {host}`",
                config.display()
            ),
            "{auth:?}"
        );
        assert!(!format!("{err} {err:?}").contains("wrong-password-XYZ"));
        assert_eq!(err.exit_code(), exit::FAILURE);
    }
}

#[test]
fn credential_helper_named_by_creds_store_is_asked_through_the_closure() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::Basic(StandinCreds::new(USER, PASSWORD)), None);
    let home = Home::new();
    home.write("docker/config.json", r#"{"auths":{},"credsStore":"fake"}"#);
    let asked = std::cell::RefCell::new(Vec::new());
    let helper = |name: &str, server: &str| -> Result<Option<(String, String)>, String> {
        asked.borrow_mut().push(format!("{name} {server}"));
        Ok(Some((USER.to_string(), PASSWORD.to_string())))
    };
    let listing = list_with(&oci_source(&reg, "bsr"), &home, &helper).unwrap();
    assert_eq!(listing.available.len(), 12);
    assert_eq!(asked.into_inner(), [format!("fake {}", reg.host())]);
}

#[test]
fn anonymous_registry_never_asks_for_credentials() {
    // helm resolves credentials only on a challenge; a locked keychain must not break a
    // public registry.
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::None, None);
    let home = Home::new();
    home.write("docker/config.json", r#"{"credsStore":"locked"}"#);
    let helper = |name: &str, _: &str| -> Result<Option<(String, String)>, String> { panic!("asked {name}") };
    let listing = list_with(&oci_source(&reg, "bsr"), &home, &helper).unwrap();
    assert_eq!(listing.available.len(), 12);
}

#[test]
fn build_metadata_tags_use_underscore_and_keep_their_spelling() {
    let charts = tempfile::tempdir().unwrap();
    for version in ["1.0.0", "1.0.0+build.7", "1.1.0-rc.1+meta"] {
        let mut files = BTreeMap::new();
        files.insert(
            "Chart.yaml".to_string(),
            format!("apiVersion: v2\nname: meta\nversion: {version}\nappVersion: \"9\"\n").into_bytes(),
        );
        std::fs::write(
            charts.path().join(format!("meta-{version}.tgz")),
            archive::write_tgz("meta", &files, 0).unwrap(),
        )
        .unwrap();
    }
    let reg = start(charts.path(), OciAuth::None, None);
    let tags = oci::list_tags(&reg.host(), "charts/meta", &oci::anonymous, &plain()).unwrap();
    assert!(tags.contains(&"1.0.0_build.7".to_string()), "{tags:?}");

    let versions = oci::list_versions(&reg.host(), "charts/meta", &oci::anonymous, &plain()).unwrap();
    assert_eq!(spelled(&versions), ["1.0.0", "1.0.0_build.7", "1.1.0-rc.1_meta"], "the tag as helm must be given it");
    assert_eq!(versions[1].version.semver().build.as_str(), "build.7");

    // The directory holds the same charts, spelled as Chart.yaml spells them.
    let listing = dir::versions_for(charts.path(), "meta").unwrap();
    assert_eq!(spelled(&listing.available), ["1.0.0", "1.0.0+build.7", "1.1.0-rc.1+meta"]);
    let same: Vec<_> = listing.available.iter().map(|a| &a.version).collect();
    assert_eq!(same, versions.iter().map(|a| &a.version).collect::<Vec<_>>(), "same versions by semver");
}

#[test]
fn unknown_repository_is_bad_input_naming_the_reference() {
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::None, None);
    let err = oci::list_versions(&reg.host(), "charts/nope", &oci::anonymous, &plain()).unwrap_err();
    assert!(matches!(err, CatalogError::RepositoryNotFound { .. }), "{err:?}");
    assert_eq!(err.exit_code(), exit::BAD_INPUT);
    let msg = err.to_string();
    assert!(msg.contains(&format!("registry {} has no chart charts/nope: NAME_UNKNOWN", reg.host())), "{msg}");
}

#[test]
fn directory_of_packaged_fixtures() {
    let charts = packaged();
    let source = ChartSource::parse(charts.path().to_str().unwrap()).unwrap();
    assert!(matches!(source, ChartSource::Dir { .. }));
    assert_eq!(source.chart_name(), None);

    let mut expected_names: Vec<String> = fixtures::CHARTS.iter().map(|s| s.to_string()).collect();
    expected_names.sort();
    assert_eq!(dir::chart_names(charts.path()).unwrap(), expected_names);

    let ctx = OciContext { options: plain(), files: Home::new().files(), helper: &no_helper };
    let listing = catalog::list(&source, "bsr", &ctx).unwrap();
    assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
    assert_eq!(spelled(&listing.available), fixture_versions("bsr"));
    assert_eq!(listing.available.len(), 12);
    for (a, f) in listing.available.iter().zip(fixtures::versions("bsr").unwrap()) {
        assert_eq!(a.app_version.as_deref(), Some(f.app_version.as_str()), "{}", a.version);
    }

    // Every archive is found again by (chart, version), for `helm upgrade REL PATH`.
    let scan = dir::scan(charts.path()).unwrap();
    let rc = helm_safe_upgrade::version::ChartVersion::parse("1.5.0-rc.1").unwrap();
    assert_eq!(scan.path_of("bsr", &rc), Some(charts.path().join("bsr-1.5.0-rc.1.tgz").as_path()));
    assert_eq!(scan.entries.len(), fixtures::CHARTS.iter().map(|c| fixture_versions(c).len()).sum::<usize>());

    // The registry serving the same directory lists the same versions.
    let reg = start(charts.path(), OciAuth::None, None);
    for chart in fixtures::CHARTS {
        let from_oci = oci::list_versions(&reg.host(), &format!("charts/{chart}"), &oci::anonymous, &plain()).unwrap();
        let from_dir = dir::versions_for(charts.path(), chart).unwrap().available;
        assert_eq!(spelled(&from_oci), spelled(&from_dir), "{chart}");
    }
}

#[test]
fn repository_sources_are_left_to_helm() {
    let source = ChartSource::parse("demo/bsr").unwrap();
    let ctx = OciContext { options: plain(), files: Home::new().files(), helper: &no_helper };
    let err = catalog::list(&source, "bsr", &ctx).unwrap_err();
    assert!(err.to_string().contains("helm search repo"), "{err}");
}

#[test]
fn oci_app_versions_come_from_each_charts_config_with_one_challenge() {
    // Tags carry no appVersion; a policy counting in app versions reads each chart's
    // config (helm writes Chart.yaml's metadata there), behind the registry's auth.
    let charts = packaged();
    let reg = start(charts.path(), OciAuth::Bearer(StandinCreds::new(USER, PASSWORD)), None);
    let home = Home::new();
    home.helm_login(&reg.host(), USER, PASSWORD);
    let ChartSource::Oci { registry, repository, .. } = oci_source(&reg, "gitlab") else { unreachable!() };
    let fixture = fixtures::versions("gitlab").unwrap();
    let wanted: Vec<_> =
        fixture.iter().map(|f| helm_safe_upgrade::version::ChartVersion::parse(&f.version).unwrap()).collect();
    let files = home.files();
    let lookup = || helm_safe_upgrade::catalog::credentials::find(&registry, &files, &no_helper);
    let found = oci::app_versions(&registry, &repository, &wanted, &lookup, &plain()).unwrap();
    let got: Vec<(String, Option<String>)> = found.iter().map(|(v, a)| (v.to_string(), a.clone())).collect();
    let expected: Vec<(String, Option<String>)> =
        fixture.iter().map(|f| (f.version.clone(), Some(f.app_version.clone()))).collect();
    assert_eq!(got, expected);
    assert!(got.iter().any(|(_, a)| a.as_deref() == Some("v17.1.8-ee")), "GitLab's spelling kept");
    let requests = reg.requests();
    assert_eq!(requests.iter().filter(|r| r.status == 401).count(), 1, "one challenge: {requests:?}");
    assert_eq!(requests.iter().filter(|r| r.target.contains("/manifests/") && r.status == 200).count(), wanted.len());
    assert_eq!(
        requests.iter().filter(|r| r.target.contains("/blobs/sha256:") && r.status == 200).count(),
        wanted.len()
    );

    // Without the credentials the registry asks for: the same refusal as listing.
    let empty = Home::new().files();
    let anonymous = || helm_safe_upgrade::catalog::credentials::find(&registry, &empty, &no_helper);
    let err = oci::app_versions(&registry, &repository, &wanted[..1], &anonymous, &plain()).unwrap_err();
    assert!(matches!(err, CatalogError::CredentialsRequired { .. }), "{err:?}");
}
