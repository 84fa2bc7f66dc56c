//! The run's own copies of the chart archives it deploys.
//!
//! A walk deploys each version once and may deploy it again on the way back; helm 3
//! fetches a repository chart again for every `helm upgrade`, and a repository or registry
//! may serve other content for the same version between the plan and the deploy. So the
//! preflight pulls every version the walk may deploy once per run, into a private folder
//! of the run, renders from these files and the walk deploys them, after checking each
//! file's digest against the one the plan shows: what was rendered and checked is what
//! is deployed.
//!
//! The folder lives as long as the run. Nothing is kept between runs: no source says
//! cheaply which content a version has now (`helm search repo` gives no digest, a
//! registry tag can be pushed again), and a cache that may serve yesterday's archive
//! for today's plan would defeat the check.

use std::path::{Path, PathBuf};

use super::ChartArg;
use crate::digest::sha256;
use crate::helm::Helm;
use crate::version::ChartVersion;

/// One chart archive, where the walk finds it, and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedChart {
    pub path: PathBuf,
    pub digest: String,
}

/// The archive of `version` from `chart`: a packaged chart on disk is used where it is;
/// a repository or registry chart is pulled into `dir`.
pub fn fetch(helm: &Helm, dir: &Path, chart: &ChartArg, version: &ChartVersion) -> Result<CachedChart, String> {
    match chart {
        ChartArg::Cached { source, .. } => fetch(helm, dir, source, version),
        ChartArg::Files(_) => {
            let (path, _) = chart.helm_args(version)?;
            Ok(CachedChart { digest: digest_of(Path::new(&path))?, path: PathBuf::from(path) })
        }
        ChartArg::Reference { .. } => pull_into(helm, chart, version, dir),
    }
}

/// The `sha256:` of a file's content.
pub fn digest_of(path: &Path) -> Result<String, String> {
    std::fs::read(path).map(|bytes| sha256(&bytes)).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `helm pull` into a folder of its own (pulls run in parallel, and helm names the file
/// after the chart), then the archive moved to `<dir>/<version>.tgz`.
fn pull_into(helm: &Helm, chart: &ChartArg, version: &ChartVersion, dir: &Path) -> Result<CachedChart, String> {
    let cannot = |what: &str, e: std::io::Error| format!("cannot {what} in {}: {e}", dir.display());
    let landing = tempfile::Builder::new().prefix(".pull-").tempdir_in(dir).map_err(|e| cannot("pull", e))?;
    let (reference, flags) = chart.helm_args(version)?;
    helm.pull(format!("pull {reference} {version} for the preflight"), &reference, flags, landing.path())
        .map_err(|e| e.to_string())?;
    let pulled = std::fs::read_dir(landing.path())
        .map_err(|e| cannot("read the pulled chart", e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .ok_or_else(|| format!("helm pull {reference} --version {version} left no .tgz archive"))?;
    let file = dir.join(format!("{}.tgz", version.original()));
    std::fs::rename(&pulled, &file).map_err(|e| cannot("keep the pulled chart", e))?;
    Ok(CachedChart { digest: digest_of(&file)?, path: file })
}
