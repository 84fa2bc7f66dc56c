//! Chart versions from a directory of packaged charts (`*.tgz`), for air-gapped sites
//! that copy archives made by `helm package` or `helm pull` instead of reaching a
//! repository.
//!
//! Owns reading those archives: each is gzip over tar with every path under one top
//! directory (`bsr/Chart.yaml`, `bsr/templates/…`; helm's loader strips that first
//! element, pkg/chart/loader/archive.go), and only `Chart.yaml`'s `name`, `version` and
//! `appVersion` matter here. The version comes from `Chart.yaml`, never from the file
//! name, because files get renamed when copied around. An archive that cannot be read is
//! skipped with a warning (one bad copy must not hide every other version); a missing or
//! empty directory is an error. It must not print, spawn, or write anything.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use serde::Deserialize;

use super::{CatalogError, Listing};
use crate::plan::Available;
use crate::version::ChartVersion;

/// `Chart.yaml` larger than this is not a chart's metadata; stops a hostile archive from
/// making us buffer gigabytes (helm's own loader caps files too).
const MAX_CHART_YAML: u64 = 1 << 20;

/// One packaged chart found in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The chart's name from `Chart.yaml`.
    pub name: String,
    pub available: Available,
    /// The archive, as `helm upgrade RELEASE PATH` needs it.
    pub path: PathBuf,
}

/// Every readable chart in a directory, and what was skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirListing {
    /// Sorted by chart name, then version (oldest first); one entry per (name, version).
    pub entries: Vec<DirEntry>,
    /// One line per skipped archive, saying which and why.
    pub warnings: Vec<String>,
}

impl DirListing {
    /// The versions of `chart`, oldest first.
    pub fn versions_of(&self, chart: &str) -> Vec<Available> {
        self.entries.iter().filter(|e| e.name == chart).map(|e| e.available.clone()).collect()
    }

    /// The archive holding `chart` at `version`, for `helm upgrade`. A binary search over
    /// the sorted entries: the run looks up every version of a listing, and a directory of
    /// thousands of archives must not make that quadratic.
    pub fn path_of(&self, chart: &str, version: &ChartVersion) -> Option<&Path> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(chart).then_with(|| e.available.version.cmp(version)))
            .ok()
            .map(|i| self.entries[i].path.as_path())
    }

    /// The distinct chart names, sorted.
    pub fn chart_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.clone()).collect::<BTreeSet<_>>().into_iter().collect()
    }
}

/// Reads every `*.tgz` in `dir` (not recursively).
pub fn scan(dir: &Path) -> Result<DirListing, CatalogError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CatalogError::DirMissing { path: dir.to_path_buf() });
        }
        Err(source) => return Err(CatalogError::DirUnreadable { path: dir.to_path_buf(), source }),
    };
    if !meta.is_dir() {
        return Err(CatalogError::NotADir { path: dir.to_path_buf() });
    }
    let read =
        std::fs::read_dir(dir).map_err(|source| CatalogError::DirUnreadable { path: dir.to_path_buf(), source })?;
    let mut archives: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz") && p.is_file())
        .collect();
    if archives.is_empty() {
        return Err(CatalogError::DirEmpty { path: dir.to_path_buf() });
    }
    // File-name order makes "which duplicate wins" and the warnings deterministic.
    archives.sort();
    Ok(listing_from(archives.into_iter().map(|path| {
        let read = read_archive(&path);
        (path, read)
    })))
}

/// The listing from what each archive (in file-name order) held: the first archive of a
/// (chart, version) wins, later copies and unreadable archives become warnings. Linear
/// in the archives apart from one sort, however absurd their versions.
fn listing_from(read: impl IntoIterator<Item = (PathBuf, Result<(String, Available), String>)>) -> DirListing {
    let mut listing = DirListing::default();
    let mut seen = HashSet::new();
    for (path, result) in read {
        match result {
            Ok((name, available)) => {
                if !seen.insert((name.clone(), available.version.semver().clone())) {
                    listing.warnings.push(format!(
                        "skipped {}: {name} {} is already in another archive",
                        path.display(),
                        available.version
                    ));
                    continue;
                }
                listing.entries.push(DirEntry { name, available, path });
            }
            Err(reason) => listing.warnings.push(format!("skipped {}: {reason}", path.display())),
        }
    }
    listing.entries.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.available.version.cmp(&b.available.version)));
    listing
}

/// The versions of `chart` in `dir`, oldest first, with the warnings of the scan. A
/// directory that holds no archive of `chart` is an error naming what it does hold.
pub fn versions_for(dir: &Path, chart: &str) -> Result<Listing, CatalogError> {
    listing_for(&scan(dir)?, dir, chart)
}

/// The versions of `chart` in a directory already scanned.
pub fn listing_for(listing: &DirListing, dir: &Path, chart: &str) -> Result<Listing, CatalogError> {
    let available = listing.versions_of(chart);
    if available.is_empty() {
        return Err(CatalogError::ChartNotInDir {
            path: dir.to_path_buf(),
            chart: chart.to_string(),
            found: listing.chart_names(),
            unreadable: listing.warnings.iter().filter(|w| !w.contains("already in another archive")).count(),
        });
    }
    Ok(Listing { available, warnings: listing.warnings.clone() })
}

/// The names of the charts packaged in `dir`, sorted: what a `Dir` source offers before
/// the release says which chart it is.
pub fn chart_names(dir: &Path) -> Result<Vec<String>, CatalogError> {
    Ok(scan(dir)?.chart_names())
}

#[derive(Deserialize)]
struct ChartYaml {
    name: Option<String>,
    version: Option<String>,
    #[serde(rename = "appVersion", default)]
    app_version: Option<String>,
}

/// Reads one archive's `Chart.yaml`: the chart name and its version. The error is a short
/// reason for a warning.
pub fn read_archive(path: &Path) -> Result<(String, Available), String> {
    let files = top_files(path, &["Chart.yaml"])?;
    let (name, text) = files
        .into_iter()
        .next()
        .ok_or_else(|| "no <chart>/Chart.yaml in the archive (is it a packaged chart?)".to_string())?;
    parse_chart_yaml(&text).map_err(|e| format!("{name}: {e}"))
}

/// The text of the files `names` at the top of a packaged chart (`<chart>/values.yaml`),
/// by their path in the archive, those present; each at most 1 MiB. Stops reading once
/// all are found.
pub fn top_files(path: &Path, names: &[&str]) -> Result<Vec<(String, String)>, String> {
    top_files_up_to(path, names, MAX_CHART_YAML)
}

/// [`top_files`], each file at most `max` bytes: a larger one is an error, not read whole.
pub fn top_files_up_to(path: &Path, names: &[&str], max: u64) -> Result<Vec<(String, String)>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let entries = archive.entries().map_err(|e| format!("not a gzip tar archive: {e}"))?;
    let mut found = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a readable gzip tar archive: {e}"))?;
        let entry_path = entry.path().map_err(|e| format!("bad path in the archive: {e}"))?.into_owned();
        // `<top>/NAME` exactly; a `./` prefix (some tar tools add it) is ignored.
        let parts: Vec<_> = entry_path.components().filter(|c| !matches!(c, Component::CurDir)).collect();
        let wanted = parts.len() == 2 && matches!(parts[1], Component::Normal(n) if names.iter().any(|w| n == *w));
        if !wanted || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut text = String::new();
        (&mut entry)
            .take(max + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {}: {e}", entry_path.display()))?;
        if text.len() as u64 > max {
            return Err(format!("{} is larger than {}", entry_path.display(), size_text(max)));
        }
        found.push((entry_path.display().to_string(), text));
        if found.len() == names.len() {
            break;
        }
    }
    Ok(found)
}

/// What helm's render of a chart may read that only the cluster answers as the chart's
/// upgrade will see it.
#[derive(Debug, PartialEq, Eq)]
pub struct ClusterReads {
    /// `lookup`: live objects (offline, it finds none).
    pub lookup: bool,
    /// `.Capabilities.KubeVersion`, or the `kubeVersion` its `Chart.yaml` requires: the
    /// cluster's version as the cluster says it.
    pub kube_version: bool,
}

/// The words of a template that read the cluster: [`ClusterReads`]' fields, in order.
const CLUSTER_WORDS: [&str; 2] = ["lookup", "KubeVersion"];

/// What the packaged chart at `path` says of reading the cluster, read once per archive;
/// [`ChartWords::reads`] then says what each deploy of it may read. A word of
/// `CLUSTER_WORDS` (`lookup`, `KubeVersion`) anywhere in a template of the chart, or of a
/// chart it carries in `charts/` (an archive there included), counts (a comment too: a
/// slower render, never a wrong one). So does the word in text a template may render as
/// a template, when a template calls `tpl`: any other file of the chart (its
/// `values.yaml`, a file it reads), or the deploy's own values. An archive that cannot be
/// read, or a template too large to search, counts as reading it all.
pub fn chart_words(path: &Path) -> ChartWords {
    ChartWords(File::open(path).ok().and_then(|f| words_in(BufReader::new(f), 0)))
}

/// A chart's [`chart_words`]: None when the archive could not be read.
pub struct ChartWords(Option<Scan>);

impl ChartWords {
    /// What a deploy of the chart may read from the cluster; `values_mention` says whether
    /// the deploy's values hold a word, asked only when a template calls `tpl`.
    pub fn reads(&self, values_mention: impl Fn(&str) -> bool) -> ClusterReads {
        let Some(found) = &self.0 else { return ClusterReads { lookup: true, kube_version: true } };
        let reads =
            |i: usize| found.in_templates[i] || (found.tpl && (found.in_text[i] || values_mention(CLUSTER_WORDS[i])));
        ClusterReads { lookup: reads(0), kube_version: reads(1) || found.requires_kube_version }
    }
}

/// How deep charts carried in charts' archives are searched; helm itself never nests
/// further than real charts do.
const MAX_NESTING: usize = 4;

/// Where a chart's files have each of [`CLUSTER_WORDS`].
#[derive(Default)]
struct Scan {
    in_templates: [bool; 2],
    /// In a file that is neither a template nor a carried archive.
    in_text: [bool; 2],
    /// A template calls `tpl` (the word and a blank).
    tpl: bool,
    /// A `Chart.yaml` has a `kubeVersion`.
    requires_kube_version: bool,
}

/// What the archive's files say; None when it cannot be read.
fn words_in(archive: impl Read, depth: usize) -> Option<Scan> {
    const MAX_FILE: u64 = 16 << 20;
    if depth > MAX_NESTING {
        return None;
    }
    let has = |bytes: &[u8], word: &[u8]| bytes.windows(word.len()).any(|w| w == word);
    let mut found = Scan::default();
    let mut archive = tar::Archive::new(GzDecoder::new(archive));
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        // helm reads the content of every entry but these (a link reads as empty), and
        // takes `\` in a name for `/`.
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_symlink() || kind.is_hard_link() || kind.is_pax_global_extensions() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).replace('\\', "/");
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        let in_templates = parts.iter().skip(1).any(|p| *p == "templates");
        let carried_archive = name.ends_with(".tgz") && parts.contains(&"charts");
        let mut bytes = Vec::new();
        (&mut entry).take(MAX_FILE + 1).read_to_end(&mut bytes).ok()?;
        if bytes.len() as u64 > MAX_FILE {
            match in_templates || carried_archive {
                true => return None,
                false => found.in_text = [true; 2],
            }
        } else if carried_archive {
            let carried = words_in(bytes.as_slice(), depth + 1)?;
            for i in 0..CLUSTER_WORDS.len() {
                found.in_templates[i] |= carried.in_templates[i];
                found.in_text[i] |= carried.in_text[i];
            }
            found.tpl |= carried.tpl;
            found.requires_kube_version |= carried.requires_kube_version;
        } else {
            let words = match in_templates {
                true => &mut found.in_templates,
                false => &mut found.in_text,
            };
            for (i, word) in CLUSTER_WORDS.iter().enumerate() {
                words[i] |= has(&bytes, word.as_bytes());
            }
            if in_templates {
                found.tpl |= [&b"tpl "[..], b"tpl\t", b"tpl\n", b"tpl\r"].iter().any(|w| has(&bytes, w));
            }
            if parts.last() == Some(&"Chart.yaml") {
                found.requires_kube_version |= has(&bytes, b"kubeVersion");
            }
        }
    }
    Some(found)
}

/// `1 MiB`, `64 KiB`, `100 bytes`: a size limit as people say it.
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn parse_chart_yaml(text: &str) -> Result<(String, Available), String> {
    let meta: ChartYaml = serde_saphyr::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let name = meta.name.filter(|n| !n.trim().is_empty()).ok_or("it has no `name`")?;
    let raw = meta.version.filter(|v| !v.trim().is_empty()).ok_or("it has no `version`")?;
    let version = ChartVersion::parse(&raw).map_err(|e| e.to_string())?;
    Ok((name, Available { version, app_version: meta.app_version.filter(|a| !a.is_empty()) }))
}

#[cfg(test)]
mod tests {
    use super::testing::{tgz, tgz_bytes};
    use super::*;

    fn chart(name: &str, version: &str, app: Option<&str>) -> Vec<u8> {
        let mut yaml =
            format!("apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\nannotations:\n  x: y\n");
        if let Some(a) = app {
            yaml.push_str(&format!("appVersion: {a}\n"));
        }
        tgz(name, &[("Chart.yaml", &yaml), ("values.yaml", "a: 1\n"), ("templates/cm.yaml", "kind: ConfigMap\n")])
    }

    fn write(dir: &Path, file: &str, bytes: &[u8]) {
        std::fs::write(dir.join(file), bytes).unwrap();
    }

    fn versions(listing: &[Available]) -> Vec<String> {
        listing.iter().map(|a| a.version.to_string()).collect()
    }

    #[test]
    fn lists_charts_by_chart_yaml_not_file_name() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "bsr-1.1.0.tgz", &chart("bsr", "1.1.0", Some("\"2.1.0\"")));
        write(dir.path(), "bsr-1.0.4.tgz", &chart("bsr", "1.0.4", Some("2.0.4")));
        // Renamed on copy: Chart.yaml says what it is.
        write(dir.path(), "renamed.tgz", &chart("bsr", "v1.2.0", None));
        write(dir.path(), "coder-2.14.0.tgz", &chart("coder", "2.14.0", Some("2.14.0")));
        write(dir.path(), "README.txt", b"not a chart");

        let listing = scan(dir.path()).unwrap();
        assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
        assert_eq!(listing.chart_names(), ["bsr", "coder"]);
        let bsr = listing.versions_of("bsr");
        assert_eq!(versions(&bsr), ["1.0.4", "1.1.0", "v1.2.0"]);
        assert_eq!(bsr[0].app_version.as_deref(), Some("2.0.4"));
        assert_eq!(bsr[1].app_version.as_deref(), Some("2.1.0"));
        assert_eq!(bsr[2].app_version, None);
        let v120 = ChartVersion::parse("1.2.0").unwrap();
        assert_eq!(listing.path_of("bsr", &v120), Some(dir.path().join("renamed.tgz").as_path()));
        assert_eq!(listing.path_of("coder", &v120), None);

        let got = versions_for(dir.path(), "coder").unwrap();
        assert_eq!(versions(&got.available), ["2.14.0"]);
        assert_eq!(chart_names(dir.path()).unwrap(), ["bsr", "coder"]);
    }

    #[test]
    fn unreadable_archives_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "bsr-1.0.0.tgz", &chart("bsr", "1.0.0", None));
        write(dir.path(), "a-garbage.tgz", b"this is not gzip");
        write(dir.path(), "b-nochart.tgz", &tgz("x", &[("values.yaml", "a: 1\n")]));
        write(dir.path(), "c-badversion.tgz", &chart("bsr", "latest", None));
        write(dir.path(), "d-noname.tgz", &tgz("x", &[("Chart.yaml", "version: 1.0.0\n")]));
        write(dir.path(), "e-nested.tgz", &tgz("x", &[("charts/dep/Chart.yaml", "name: dep\nversion: 9.9.9\n")]));
        write(dir.path(), "f-copy.tgz", &chart("bsr", "1.0.0", None));

        let got = versions_for(dir.path(), "bsr").unwrap();
        assert_eq!(versions(&got.available), ["1.0.0"]);
        let w = got.warnings.join("\n");
        assert_eq!(got.warnings.len(), 6, "{w}");
        for fragment in [
            "a-garbage.tgz: not a readable gzip tar archive",
            "b-nochart.tgz: no <chart>/Chart.yaml",
            "c-badversion.tgz: bsr/Chart.yaml: \"latest\" is not a chart version",
            "d-noname.tgz: x/Chart.yaml: it has no `name`",
            "e-nested.tgz: no <chart>/Chart.yaml",
            "f-copy.tgz: bsr 1.0.0 is already in another archive",
        ] {
            assert!(w.contains(fragment), "missing {fragment:?} in\n{w}");
        }
        // The first by file name wins among duplicates.
        assert_eq!(scan(dir.path()).unwrap().entries[0].path, dir.path().join("bsr-1.0.0.tgz"));
    }

    #[test]
    fn missing_empty_and_wrong_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(scan(&missing), Err(CatalogError::DirMissing { .. })));
        let err = scan(dir.path()).unwrap_err();
        assert!(matches!(err, CatalogError::DirEmpty { .. }));
        assert!(err.to_string().contains("holds no packaged charts (*.tgz)"), "{err}");
        write(dir.path(), "bsr-1.0.0.tgz", &chart("bsr", "1.0.0", None));
        let file = dir.path().join("bsr-1.0.0.tgz");
        assert!(matches!(scan(&file), Err(CatalogError::NotADir { .. })));

        write(dir.path(), "broken.tgz", b"junk");
        let err = versions_for(dir.path(), "coder").unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::BAD_INPUT);
        let msg = err.to_string();
        assert!(
            msg.contains("has no archive of chart \"coder\"; it holds bsr (1 unreadable archive skipped)"),
            "{msg}"
        );
    }

    #[test]
    fn twenty_thousand_absurd_archives_collect_and_look_up_in_linear_time() {
        // What reading 20,000 archives would return, in file-name order; reading real
        // files is not what is measured here.
        let parsed: Vec<Result<ChartVersion, String>> = crate::catalog::absurd_tags(20_000)
            .iter()
            .map(|t| ChartVersion::parse(t).map_err(|e| e.to_string()))
            .collect();
        let chart_of = |i: usize| if i.is_multiple_of(50) { "coder" } else { "bsr" };
        let read = parsed.iter().enumerate().map(|(i, found)| {
            let found = found.clone().map(|v| (chart_of(i).to_string(), Available::new(v)));
            (PathBuf::from(format!("a-{i:05}.tgz")), found)
        });
        let started = std::time::Instant::now();
        let listing = listing_from(read);
        let bsr = listing.versions_of("bsr");
        // The run looks up the archive of every version it may deploy.
        let paths: Vec<&Path> = bsr.iter().map(|a| listing.path_of("bsr", &a.version).expect("listed")).collect();
        let took = started.elapsed();
        assert!(bsr.windows(2).all(|w| w[0].version < w[1].version), "sorted, one entry per version");
        assert!(listing.warnings.iter().any(|w| w.contains("is already in another archive")));
        assert!(listing.warnings.iter().any(|w| w.contains("is not a chart version")));
        // The first archive (by file name) of a version is the one deployed; a sample, as
        // the check itself is a scan per version.
        for (a, path) in bsr.iter().zip(&paths).step_by(97) {
            let first = (0..parsed.len())
                .find(|&i| chart_of(i) == "bsr" && parsed[i].as_ref().is_ok_and(|v| *v == a.version))
                .expect("listed versions come from the tags");
            assert_eq!(*path, Path::new(&format!("a-{first:05}.tgz")), "{}", a.version);
        }
        // About 0.15 s in a debug build; a scan per lookup took 3.8 s.
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn chart_yaml_with_extra_keys_and_dot_slash_paths() {
        let yaml = "apiVersion: v2\nname: meta\nversion: 1.0.0+build.7\nappVersion: \"3.2\"\nkeywords: [a, b]\nmaintainers:\n  - name: x\ndependencies: []\n";
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "meta.tgz", &tgz("./meta", &[("Chart.yaml", yaml)]));
        let got = versions_for(dir.path(), "meta").unwrap();
        assert_eq!(got.available[0].version.semver().build.as_str(), "build.7");
        assert_eq!(got.available[0].app_version.as_deref(), Some("3.2"));
    }

    #[test]
    fn a_lookup_is_found_in_the_chart_or_any_chart_it_carries() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, bytes: &[u8]| {
            write(dir.path(), name, bytes);
            chart_words(&dir.path().join(name)).reads(|_| panic!("asked of the values without a tpl")).lookup
        };
        let plain =
            [("Chart.yaml", "name: a\n"), ("values.yaml", "lookup: 1\n"), ("templates/cm.yaml", "kind: ConfigMap\n")];
        // `lookup` in values is not a call; in a template it is.
        assert!(!at("plain.tgz", &tgz("a", &plain)));
        let calls = "{{ $d := lookup \"apps/v1\" \"Deployment\" .Release.Namespace \"x\" }}\n";
        assert!(at("own.tgz", &tgz("a", &[("templates/dep.yaml", calls)])));
        assert!(at("unpacked.tgz", &tgz("a", &[("charts/sub/templates/_h.tpl", calls)])));
        let sub = tgz("sub", &[("templates/dep.yaml", calls)]);
        let carried: [(&str, &[u8]); 2] = [("Chart.yaml", b"name: a\n"), ("charts/sub-1.0.0.tgz", &sub)];
        assert!(at("carried.tgz", &tgz_bytes("a", &carried)));
        let quiet = tgz("sub", &plain);
        assert!(!at("quiet.tgz", &tgz_bytes("a", &[("charts/sub-1.0.0.tgz", &quiet)])));
        // What cannot be read counts as a call: rendered on the cluster, never wrongly.
        assert!(at("broken.tgz", b"not an archive"));
        let missing = chart_words(&dir.path().join("missing.tgz")).reads(|_| false);
        assert_eq!(missing, ClusterReads { lookup: true, kube_version: true });
    }

    #[test]
    fn a_tpl_may_call_a_lookup_in_the_text_it_renders() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, bytes: &[u8], values_mention: bool| {
            write(dir.path(), name, bytes);
            chart_words(&dir.path().join(name)).reads(|word| values_mention && word == "lookup").lookup
        };
        let renders = "data: {{ tpl (.Values.extra | toYaml) . }}\n";
        let quiet = [("Chart.yaml", "name: a\n"), ("values.yaml", "extra: x\n"), ("templates/cm.yaml", renders)];
        // A tpl, and no lookup in the chart: the deploy's values decide.
        assert!(!at("quiet.tgz", &tgz("a", &quiet), false));
        assert!(at("quiet.tgz", &tgz("a", &quiet), true));
        // The chart's own values, or a file it reads, may hold the call.
        let own = [
            ("values.yaml", "extra: '{{ (lookup \"v1\" \"Secret\" \"\" \"s\").data }}'\n"),
            ("templates/cm.yaml", renders),
        ];
        assert!(at("own.tgz", &tgz("a", &own), false));
        let read = [("files/conf.tpl", "{{ lookup \"v1\" \"Secret\" \"\" \"s\" }}"), ("templates/cm.yaml", renders)];
        assert!(at("read.tgz", &tgz("a", &read), false));
        // A carried chart's tpl renders what its parent passes it.
        let sub = tgz("sub", &[("templates/cm.yaml", renders)]);
        let parent: [(&str, &[u8]); 2] =
            [("values.yaml", b"sub: {extra: '{{ lookup }}'}\n"), ("charts/sub-1.0.0.tgz", &sub)];
        assert!(at("parent.tgz", &tgz_bytes("a", &parent), false));
        // Without a tpl, text is never rendered as a template: the values are not asked.
        let plain = [("values.yaml", "extra: '{{ lookup }}'\n"), ("templates/cm.yaml", "data: {{ .Values.extra }}\n")];
        assert!(!at("plain.tgz", &tgz("a", &plain), true));
    }

    #[test]
    fn entries_helm_reads_are_searched_whatever_their_spelling_or_type() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, entries: &[(&str, tar::EntryType, &str)]| {
            let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
            for (path, kind, data) in entries {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(*kind);
                header.set_path(path).unwrap();
                header.set_cksum();
                builder.append(&header, data.as_bytes()).unwrap();
            }
            write(dir.path(), name, &builder.into_inner().unwrap().finish().unwrap());
            chart_words(&dir.path().join(name)).reads(|_| false)
        };
        let calls = "{{ lookup \"v1\" \"Secret\" \"\" \"s\" }}";
        let regular = tar::EntryType::Regular;
        // helm takes `\` for `/`, and reads a contiguous file as any other.
        assert!(at("windows.tgz", &[("win\\templates\\cm.yaml", regular, calls)]).lookup);
        assert!(at("windows.tgz", &[("win\\Chart.yaml", regular, "name: win\nkubeVersion: '>=1.25'\n")]).kube_version);
        assert!(at("contiguous.tgz", &[("c/templates/cm.yaml", tar::EntryType::Continuous, calls)]).lookup);
        assert!(!at("plain.tgz", &[("c/templates/cm.yaml", regular, "kind: ConfigMap\n")]).lookup);
    }

    #[test]
    fn a_chart_that_reads_the_kubernetes_version_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, files: &[(&str, &str)]| {
            write(dir.path(), name, &tgz("a", files));
            chart_words(&dir.path().join(name)).reads(|word| word == "KubeVersion")
        };
        let reads = |kube_version| ClusterReads { lookup: false, kube_version };
        let compares = "{{ if semverCompare \">=1.19\" .Capabilities.KubeVersion.GitVersion }}v1{{ end }}\n";
        assert_eq!(at("compares.tgz", &[("templates/ing.yaml", compares)]), reads(true));
        assert_eq!(at("requires.tgz", &[("Chart.yaml", "name: a\nkubeVersion: '>=1.25.0'\n")]), reads(true));
        let carried = tgz("sub", &[("Chart.yaml", "name: sub\nkubeVersion: '>=1.25.0-0'\n")]);
        write(dir.path(), "carried.tgz", &tgz_bytes("a", &[("charts/sub-1.0.0.tgz", &carried)]));
        assert_eq!(chart_words(&dir.path().join("carried.tgz")).reads(|_| false), reads(true));
        // Through a tpl: the deploy's values (here they mention it) are asked.
        assert_eq!(at("tpl.tgz", &[("templates/cm.yaml", "data: {{ tpl .Values.x . }}\n")]), reads(true));
        assert_eq!(
            at("none.tgz", &[("Chart.yaml", "name: a\n"), ("templates/cm.yaml", "kind: ConfigMap\n")]),
            reads(false)
        );
    }
}

/// Packaged charts for the catalog's tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A `.tgz` laid out like `helm package` output: `files` under `top/`.
    pub fn tgz(top: &str, files: &[(&str, &str)]) -> Vec<u8> {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(rel, data)| (*rel, data.as_bytes())).collect();
        tgz_bytes(top, &files)
    }

    /// [`tgz`] of files that need not be text (a chart's archive in its `charts/`).
    pub fn tgz_bytes(top: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (rel, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, format!("{top}/{rel}"), *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }
}
