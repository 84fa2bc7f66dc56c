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
//!
//! Within a run, [`RunCharts`] pulls each version once: the target chart is read for the
//! policy it ships before the plan is made, and the preflight then renders (and the walk
//! deploys) that same file rather than pulling it again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
            let path = PathBuf::from(chart.for_helm(version)?.arg());
            Ok(CachedChart { digest: digest_of(&path)?, path })
        }
        ChartArg::Reference { .. } => pull_into(helm, chart, version, dir),
    }
}

/// The archives one run has fetched, by version, in a private folder of the run (0700,
/// made at the first pull, removed when this is dropped). One run deploys one chart from
/// one source, so a version names one archive. Shared by threads: the preflight pulls the
/// hops' targets in parallel.
#[derive(Default)]
pub struct RunCharts {
    folder: Mutex<Option<tempfile::TempDir>>,
    fetched: Mutex<BTreeMap<ChartVersion, CachedChart>>,
}

impl RunCharts {
    pub fn new() -> RunCharts {
        RunCharts::default()
    }

    /// The archive of `version` from `chart`: fetched by this run already, else now
    /// ([`fetch`]; a pull lands in the run's folder).
    pub fn fetch(&self, helm: &Helm, chart: &ChartArg, version: &ChartVersion) -> Result<CachedChart, String> {
        if let Some(known) = self.fetched.lock().expect("not poisoned").get(version) {
            return Ok(known.clone());
        }
        let folder = if pulled(chart) { self.folder()? } else { PathBuf::new() };
        let fetched = fetch(helm, &folder, chart, version)?;
        self.fetched.lock().expect("not poisoned").insert(version.clone(), fetched.clone());
        Ok(fetched)
    }

    /// The run's folder, made on first use: a source of packaged files on disk needs none.
    fn folder(&self) -> Result<PathBuf, String> {
        let mut folder = self.folder.lock().expect("not poisoned");
        if folder.is_none() {
            let made = tempfile::Builder::new().prefix("helm-safe-upgrade-charts-").tempdir().map_err(|e| {
                format!("cannot make a private folder for the run's charts: {e}\nhint: set TMPDIR to a writable folder")
            })?;
            *folder = Some(made);
        }
        Ok(folder.as_ref().expect("made above").path().to_path_buf())
    }
}

/// Whether [`fetch`] pulls `chart` (into a folder) rather than using a file where it is.
fn pulled(chart: &ChartArg) -> bool {
    match chart {
        ChartArg::Reference { .. } => true,
        ChartArg::Files(_) => false,
        ChartArg::Cached { source, .. } => pulled(source),
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
    let chart = chart.for_helm(version)?;
    let reference = chart.arg();
    helm.pull(format!("pull {reference} {version} into the run's charts"), &chart, landing.path())
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
