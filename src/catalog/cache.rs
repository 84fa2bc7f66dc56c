//! The chart archives a run deploys: its own copies, checked by digest.
//!
//! A walk deploys each version once and may deploy it again on the way back; helm 3
//! fetches a repository chart again for every `helm upgrade`, and a repository or registry
//! may serve other content for the same version between the plan and the deploy. So the
//! preflight fetches every version the walk may deploy once per run, into a private folder
//! of the run, renders from these files and the walk deploys them, after checking each
//! file's digest against the one the plan shows: what was rendered and checked is what
//! is deployed.
//!
//! Between runs, a repository chart's archive is kept by its digest ([`Kept`]): the
//! repository's index (helm's cached copy, which the run refreshed before listing) gives
//! each version's sha256, so an archive kept earlier whose content has that digest *is*
//! the one `helm pull` would fetch now, and the next plan of the same path (a `--plan`,
//! then the run) pulls nothing. An archive is kept only when its content matches the
//! index, and used only after its content is hashed again. An OCI chart is pulled every
//! run: a tag may be pushed again, and nothing the run already read says which content
//! it names now.
//!
//! Within a run, [`RunCharts`] fetches each version once: the target chart is read for the
//! policy it ships before the plan is made, and the preflight then renders (and the walk
//! deploys) that same file rather than fetching it again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

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
    /// Archives kept between runs; None where there is no place for them.
    kept: Option<Kept>,
    /// The repository index's digests of the chart's versions, read at the first pull.
    vouched: OnceLock<BTreeMap<String, String>>,
    /// Where helm caches repository indexes, when not where the environment says (tests).
    repository_cache: Option<PathBuf>,
}

impl RunCharts {
    /// The run's archives, with those kept between runs in [`Kept::from_env`]'s folder.
    pub fn new() -> RunCharts {
        RunCharts { kept: Kept::from_env(), ..RunCharts::default() }
    }

    /// The run's archives, with those kept between runs in `kept` and helm's repository
    /// indexes in `repository_cache` (tests).
    #[cfg(test)]
    fn keeping_in(kept: PathBuf, repository_cache: PathBuf) -> RunCharts {
        RunCharts { kept: Some(Kept { root: kept }), repository_cache: Some(repository_cache), ..RunCharts::default() }
    }

    /// The archive of `version` from `chart`: fetched by this run already, else kept from
    /// an earlier run with the digest the repository's index gives, else fetched now
    /// ([`fetch`]; a pull lands in the run's folder, and is kept when the index vouches
    /// for its content).
    pub fn fetch(&self, helm: &Helm, chart: &ChartArg, version: &ChartVersion) -> Result<CachedChart, String> {
        if let Some(known) = self.fetched.lock().expect("not poisoned").get(version) {
            return Ok(known.clone());
        }
        let folder = if pulled(chart) { self.folder()? } else { PathBuf::new() };
        let vouched = self.vouched(chart, version);
        let kept = self.kept.as_ref().zip(vouched.as_ref());
        let fetched = match kept.and_then(|(kept, digest)| kept.take(digest, &folder, version)) {
            Some(hit) => hit,
            None => {
                let fetched = fetch(helm, &folder, chart, version)?;
                if let Some((kept, _)) = kept.filter(|(_, digest)| **digest == fetched.digest) {
                    // The kept copy saves the next run a pull; failing to keep it costs
                    // nothing now.
                    let _ = kept.keep(&fetched);
                }
                fetched
            }
        };
        self.fetched.lock().expect("not poisoned").insert(version.clone(), fetched.clone());
        Ok(fetched)
    }

    /// The digest helm's cached index of a repository chart gives `version`; None for any
    /// other source, or where the index says none.
    fn vouched(&self, chart: &ChartArg, version: &ChartVersion) -> Option<String> {
        let reference = match chart {
            ChartArg::Reference { reference, .. } => reference,
            ChartArg::Cached { source, .. } => return self.vouched(source, version),
            ChartArg::Files(_) => return None,
        };
        let Ok(super::ChartSource::Repo { repo, name }) = super::ChartSource::parse(reference) else {
            return None;
        };
        let digests = self.vouched.get_or_init(|| {
            let index = match &self.repository_cache {
                Some(cache) => cache.join(format!("{repo}-index.yaml")),
                None => super::repo::cached_index_here(&repo),
            };
            super::repo::index_digests(&index, &name)
        });
        digests.get(version.original()).cloned()
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

/// Chart archives kept between runs on this machine, each named by its content's digest:
/// `<root>/<sha256 hex>.tgz`, 0600 in a 0700 folder. One is taken only when the
/// repository's index gives that digest for the version, and only after it is hashed
/// again; one no run took for [`KEPT_FOR`] is removed when another is kept.
#[derive(Debug)]
pub struct Kept {
    root: PathBuf,
}

/// How long an archive no run took stays kept.
const KEPT_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

impl Kept {
    /// `$XDG_CACHE_HOME/helm-safe-upgrade/charts`, else `~/.cache/helm-safe-upgrade/charts`
    /// (absolute paths only); None without either.
    pub fn from_env() -> Option<Kept> {
        let absolute = |name| crate::env::path(name).filter(|p| p.is_absolute());
        let cache =
            absolute(crate::env::XDG_CACHE_HOME).or_else(|| absolute(crate::env::HOME).map(|h| h.join(".cache")))?;
        Some(Kept { root: cache.join("helm-safe-upgrade").join("charts") })
    }

    /// Where an archive of `digest` is kept; None for anything but `sha256:` and 64
    /// lowercase hex digits (the digest comes from a repository: never a path).
    fn path(&self, digest: &str) -> Option<PathBuf> {
        crate::digest::sha256_hex(digest).map(|hex| self.root.join(format!("{hex}.tgz")))
    }

    /// The kept archive of `digest`, linked (or copied) into `dir` as the run's copy of
    /// `version`, and hashed there: a kept file changed since it was kept is not taken.
    fn take(&self, digest: &str, dir: &Path, version: &ChartVersion) -> Option<CachedChart> {
        let kept = self.path(digest)?;
        let file = dir.join(format!("{}.tgz", version.original()));
        if std::fs::hard_link(&kept, &file).is_err() {
            std::fs::copy(&kept, &file).ok()?;
        }
        match digest_of(&file) {
            Ok(found) if found == digest => {
                // Taken now: kept for another KEPT_FOR.
                let _ =
                    std::fs::File::options().write(true).open(&kept).and_then(|f| f.set_modified(SystemTime::now()));
                Some(CachedChart { path: file, digest: found })
            }
            _ => {
                let _ = std::fs::remove_file(&file);
                None
            }
        }
    }

    /// Keep `chart` (its digest checked against the index by the caller) for later runs:
    /// written beside its place and renamed there, so a run reading it meanwhile sees the
    /// old file or the new one, never half of one.
    fn keep(&self, chart: &CachedChart) -> std::io::Result<()> {
        let Some(path) = self.path(&chart.digest) else { return Ok(()) };
        let mut folder = std::fs::DirBuilder::new();
        folder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder.create(&self.root)?;
        // A NamedTempFile is 0600.
        let mut landing = tempfile::NamedTempFile::new_in(&self.root)?;
        std::io::copy(&mut std::fs::File::open(&chart.path)?, &mut landing)?;
        landing.persist(&path).map_err(|e| e.error)?;
        self.forget_old();
        Ok(())
    }

    /// Remove what no run took for [`KEPT_FOR`] (and a landing file a killed run left).
    fn forget_old(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return };
        let Some(before) = SystemTime::now().checked_sub(KEPT_FOR) else { return };
        for entry in entries.filter_map(Result::ok) {
            let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < before);
            if old && entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::helm::Runner;
    use crate::signals::Signals;

    /// A stand-in for `helm pull` that counts its calls and lands `archive` where it is
    /// told (`--destination DIR`).
    fn helm_pulling(dir: &Path, archive: &Path) -> (Helm, PathBuf) {
        let calls = dir.join("calls");
        std::fs::write(&calls, "").unwrap();
        let script = dir.join("helm");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> '{}'\nwhile [ \"$1\" != --destination ]; do shift; done\ncp '{}' \"$2/bsr.tgz\"\n",
                calls.display(),
                archive.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (Helm::new(Runner::new(Signals::default(), false), script, "ns".into(), None), calls)
    }

    #[test]
    fn a_repository_chart_the_index_vouches_for_is_kept_and_not_pulled_again() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, indexes) = (dir.path().join("state/charts"), dir.path().join("repository"));
        std::fs::create_dir_all(&indexes).unwrap();
        let archive = dir.path().join("bsr-1.1.9.tgz");
        std::fs::write(&archive, b"the chart, as the repository serves it").unwrap();
        let digest = digest_of(&archive).unwrap();
        let index = |digest: &str| {
            let hex = digest.strip_prefix("sha256:").unwrap();
            std::fs::write(
                indexes.join("demo-index.yaml"),
                format!("entries:\n  bsr:\n  - version: 1.1.9\n    digest: {hex}\n"),
            )
            .unwrap();
        };
        index(&digest);
        let (helm, calls) = helm_pulling(dir.path(), &archive);
        let pulls = || std::fs::read_to_string(&calls).unwrap().lines().count();
        let chart = ChartArg::Reference { reference: "demo/bsr".into(), plain_http: false };
        let v = ChartVersion::parse("1.1.9").unwrap();

        // The first run pulls, and keeps the archive: 0600 in a 0700 folder.
        let first = RunCharts::keeping_in(kept.clone(), indexes.clone()).fetch(&helm, &chart, &v).unwrap();
        assert_eq!((first.digest.as_str(), pulls()), (digest.as_str(), 1));
        let kept_file = kept.join(format!("{}.tgz", digest.strip_prefix("sha256:").unwrap()));
        assert_eq!(std::fs::metadata(&kept_file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o700);

        // The next run takes the kept archive: no pull, the same content, in its own folder.
        let run = RunCharts::keeping_in(kept.clone(), indexes.clone());
        let second = run.fetch(&helm, &chart, &v).unwrap();
        assert_eq!((second.digest.as_str(), pulls()), (digest.as_str(), 1));
        assert_ne!(second.path, kept_file);
        assert_eq!(std::fs::read(&second.path).unwrap(), std::fs::read(&archive).unwrap());

        // A kept file changed since it was kept is not taken: the run pulls, and keeps the
        // archive the index vouches for again.
        std::fs::write(&kept_file, b"tampered").unwrap();
        let third = RunCharts::keeping_in(kept.clone(), indexes.clone()).fetch(&helm, &chart, &v).unwrap();
        assert_eq!((third.digest.as_str(), pulls()), (digest.as_str(), 2));
        assert_eq!(digest_of(&kept_file).unwrap(), digest);

        // The repository now serves other content than its index says: pulled every run,
        // never kept (and never taken for what the index names).
        std::fs::remove_file(&kept_file).unwrap();
        index(&format!("sha256:{}", "0".repeat(64)));
        for n in [3, 4] {
            let pulled = RunCharts::keeping_in(kept.clone(), indexes.clone()).fetch(&helm, &chart, &v).unwrap();
            assert_eq!((pulled.digest.as_str(), pulls()), (digest.as_str(), n));
        }
        assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 0, "nothing kept");
    }

    #[test]
    fn only_a_digest_names_a_kept_file_and_what_no_run_took_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept { root: dir.path().join("charts") };
        let hex = "ab".repeat(32);
        assert_eq!(kept.path(&format!("sha256:{hex}")), Some(dir.path().join(format!("charts/{hex}.tgz"))));
        for bad in
            [hex.clone(), format!("sha256:{}", hex.to_uppercase()), "sha256:../../x".into(), format!("sha256:{hex}/")]
        {
            assert_eq!(kept.path(&bad), None, "{bad}");
        }
        let chart = |name: &str, content: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            CachedChart { digest: digest_of(&path).unwrap(), path }
        };
        let (old, new) = (chart("old.tgz", b"old"), chart("new.tgz", b"new"));
        kept.keep(&old).unwrap();
        let old_file = kept.path(&old.digest).unwrap();
        let long_ago = SystemTime::now() - KEPT_FOR - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&old_file).unwrap().set_modified(long_ago).unwrap();
        kept.keep(&new).unwrap();
        assert!(!old_file.exists(), "not taken for KEPT_FOR: forgotten");
        assert!(kept.path(&new.digest).unwrap().exists());
    }
}
