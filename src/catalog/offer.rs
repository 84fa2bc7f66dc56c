//! One dispatch for every chart source: the versions it offers and how helm is told the
//! chart. The live run's gather stage and shell completion both come here, so adding a
//! source means adding it here once.
//!
//! Repository charts are listed by helm (it owns the repository index and its
//! credentials): `helm repo update REPO` first for a live run (as the vendors' pages say),
//! then `helm search repo`. OCI registries and directories of packages are listed in
//! process ([`super::oci`], [`super::dir`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{CatalogError, ChartSource, credentials, dir, oci, repo};
use crate::helm::{ChartRef, Helm};
use crate::plan::Available;
use crate::version::ChartVersion;

/// How helm is told which chart to deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartArg {
    /// `repo/name` or `oci://…`, with `--version`.
    Reference { reference: String, plain_http: bool },
    /// Packaged charts on disk: one archive per version.
    Files(BTreeMap<ChartVersion, PathBuf>),
    /// The preflight's cached archives, checked by digest; a version not among them
    /// (one the walk was not expected to deploy) comes from the source itself.
    Cached { files: BTreeMap<ChartVersion, PathBuf>, source: Box<ChartArg> },
}

impl ChartArg {
    /// The chart of `version` as helm is told it.
    pub fn for_helm(&self, version: &ChartVersion) -> Result<ChartRef, String> {
        match self {
            ChartArg::Reference { reference, plain_http } => Ok(ChartRef::Reference {
                reference: reference.clone(),
                version: version.original().to_string(),
                plain_http: *plain_http,
            }),
            ChartArg::Files(files) => files
                .get(version)
                .map(|p| ChartRef::File(p.clone()))
                .ok_or_else(|| format!("no packaged chart for {version} in the chart directory")),
            ChartArg::Cached { files, source } => match files.get(version) {
                Some(path) => Ok(ChartRef::File(path.clone())),
                None => source.for_helm(version),
            },
        }
    }
}

/// What a chart source offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub available: Vec<Available>,
    pub chart: ChartArg,
    /// Said in the plan: a stale index, skipped archives, ...
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct OfferOptions {
    /// `--plain-http` for an `oci://` registry.
    pub plain_http: bool,
    /// Refresh a repository's index first (a live run). Completion skips it: it must be fast.
    pub refresh: bool,
}

/// What `source` offers of chart `chart_name`; with None (completion, which does not know
/// the release), every chart a directory holds.
pub fn offered(
    source: &ChartSource,
    chart_name: Option<&str>,
    helm: &Helm,
    options: OfferOptions,
) -> Result<Offer, CatalogError> {
    let reference = source.to_string();
    match source {
        ChartSource::Repo { repo: repo_name, name } => {
            let mut warnings = Vec::new();
            if options.refresh
                && let Err(e) = helm.repo_update(repo_name)
            {
                warnings.push(format!(
                    "could not refresh repository {repo_name}; using the cached index ({})",
                    e.to_string().lines().next().unwrap_or_default()
                ));
            }
            let json = helm.search_repo_json(&reference).map_err(|e| CatalogError::Helm(e.to_string()))?;
            let available = repo::parse_search(&json, repo_name, name).map_err(|e| CatalogError::BadResponse {
                url: format!("helm search repo {reference}"),
                reason: e.to_string(),
            })?;
            if available.is_empty() {
                return Err(CatalogError::NotInRepo { reference, name: name.clone() });
            }
            Ok(Offer { available, chart: ChartArg::Reference { reference, plain_http: false }, warnings })
        }
        ChartSource::Oci { name, .. } => {
            let helper = |helper: &str, server: &str| credentials::ask_helper(&helm.runner, helper, server);
            let ctx = super::OciContext {
                options: oci::OciOptions { plain_http: options.plain_http, ..Default::default() },
                files: credentials::CredentialFiles::from_process_env(),
                helper: &helper,
            };
            let listing = super::list(source, chart_name.unwrap_or(name), &ctx)?;
            Ok(Offer {
                available: listing.available,
                chart: ChartArg::Reference { reference, plain_http: options.plain_http },
                warnings: listing.warnings,
            })
        }
        ChartSource::Dir { path } => {
            let scanned = dir::scan(path)?;
            match chart_name {
                Some(chart) => {
                    let listing = dir::listing_for(&scanned, path, chart)?;
                    let files = listing
                        .available
                        .iter()
                        .filter_map(|a| {
                            scanned.path_of(chart, &a.version).map(|p| (a.version.clone(), p.to_path_buf()))
                        })
                        .collect();
                    Ok(Offer {
                        available: listing.available,
                        chart: ChartArg::Files(files),
                        warnings: listing.warnings,
                    })
                }
                None => {
                    let mut available: Vec<Available> = scanned.entries.iter().map(|e| e.available.clone()).collect();
                    available.sort_by(|a, b| a.version.cmp(&b.version));
                    available.dedup_by(|a, b| a.version == b.version);
                    Ok(Offer { available, chart: ChartArg::Files(BTreeMap::new()), warnings: vec![] })
                }
            }
        }
    }
}

/// At most this many configs are read for app versions: two requests each, and a range of
/// hundreds of versions is no path an operator walks.
pub const MAX_APP_VERSION_READS: usize = 200;

/// The `appVersion`s of `wanted` versions the offer lists without one, for a policy that
/// counts in app versions. A repository index and packaged charts carry them already; an
/// OCI registry's tags do not, so each chart's config is read (the newest
/// [`MAX_APP_VERSION_READS`] of them, said in the offer's warnings when more were wanted).
pub fn fill_app_versions(
    source: &ChartSource,
    offer: &mut Offer,
    wanted: &[ChartVersion],
    helm: &Helm,
    plain_http: bool,
) -> Result<(), CatalogError> {
    let ChartSource::Oci { registry, repository, .. } = source else { return Ok(()) };
    let mut missing: Vec<ChartVersion> = offer
        .available
        .iter()
        .filter(|a| a.app_version.is_none() && wanted.contains(&a.version))
        .map(|a| a.version.clone())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    if missing.len() > MAX_APP_VERSION_READS {
        let left = missing.len() - MAX_APP_VERSION_READS;
        offer.warnings.push(format!(
            "the app versions of the {left} oldest of {} versions were not read from {registry}/{repository}: at most {MAX_APP_VERSION_READS} are",
            missing.len()
        ));
        missing.drain(..left);
    }
    let helper = |helper: &str, server: &str| credentials::ask_helper(&helm.runner, helper, server);
    let files = credentials::CredentialFiles::from_process_env();
    let lookup = || credentials::find(registry, &files, &helper);
    let options = oci::OciOptions { plain_http, ..Default::default() };
    for (version, app) in oci::app_versions(registry, repository, &missing, &lookup, &options)? {
        if let Some(entry) = offer.available.iter_mut().find(|a| a.version == version) {
            entry.app_version = app;
        }
    }
    Ok(())
}
