//! The vendor-like fixture charts embedded from `charts/` (see build.rs) and their
//! packaging into `<name>-<version>.tgz` files.
//!
//! Each chart has one source tree (`charts/<name>/chart/`: values.yaml, templates/) and a
//! `charts/<name>/versions.yaml` listing its versions. Packaging writes a `Chart.yaml`
//! per version (apiVersion v2) next to the shared sources. Output is deterministic: the
//! `Chart.yaml` mtime (which becomes `created` in index.yaml) is a fixed day per version,
//! in the order versions.yaml lists them, starting 2024-01-01.
//!
//! A chart whose files change between versions adds overlays: version V's files are the
//! shared tree, then, for every version up to and including V in versions.yaml order, the
//! files of `charts/<name>/versions/<that version>/` (replacing or adding, same relative
//! paths) and the removal of the paths its `remove:` lists. So an overlay holds what changed
//! in that version and every later version inherits it, as a vendor's tree evolves.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive;

include!(concat!(env!("OUT_DIR"), "/fixture_files.rs"));

/// The fixture charts, by name.
pub const CHARTS: [&str; 7] = ["acme", "bsr", "coder", "generic-app", "gitlab", "sourcegraph", "vendorapp"];

/// First `created` time of every fixture chart (2024-01-01T00:00:00Z); each later
/// version in versions.yaml is one day later.
const EPOCH: u64 = 1_704_067_200;

/// One version of a fixture chart, as listed in versions.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FixtureVersion {
    /// Chart version (SemVer 2).
    pub version: String,
    /// The application version (`appVersion`).
    pub app_version: String,
    /// Chart.yaml annotations, e.g. `bsr.example/schema-version` for bsr.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Files (paths relative to the chart root) this version no longer has, from the
    /// shared tree or an earlier version's overlay; later versions do not have them either
    /// unless their overlay brings them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionsFile {
    description: String,
    versions: Vec<FixtureVersion>,
}

fn not_found(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, what)
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn versions_file(chart: &str) -> io::Result<VersionsFile> {
    let key = format!("{chart}/versions.yaml");
    let (_, bytes) = FILES
        .iter()
        .find(|(p, _)| *p == key)
        .ok_or_else(|| not_found(format!("no fixture chart {chart:?} (known: {})", CHARTS.join(", "))))?;
    let vf: VersionsFile = yaml_serde::from_slice(bytes).map_err(|e| invalid(format!("{key}: {e}")))?;
    check_overlays(FILES, chart, &vf.versions)?;
    Ok(vf)
}

/// Every overlay directory (`<chart>/versions/<version>/`) names a version listed in
/// versions.yaml (a typo would otherwise be ignored silently) and holds no Chart.yaml
/// (generated from versions.yaml).
fn check_overlays(all: &[(&str, &[u8])], chart: &str, versions: &[FixtureVersion]) -> io::Result<()> {
    let overlays = format!("{chart}/versions/");
    for (path, _) in all {
        let Some(rest) = path.strip_prefix(&overlays) else { continue };
        let version = rest.split('/').next().unwrap_or_default();
        if !versions.iter().any(|v| v.version == version) {
            return Err(invalid(format!("{overlays}{version}/ is no version listed in {chart}/versions.yaml")));
        }
        if rest == format!("{version}/Chart.yaml") {
            return Err(invalid(format!("{path}: Chart.yaml is generated from {chart}/versions.yaml")));
        }
    }
    Ok(())
}

/// The source files of `versions[index]`, paths relative to the chart root: the shared
/// tree `<chart>/chart/`, then for every version up to and including it (versions.yaml
/// order) its overlay `<chart>/versions/<version>/` (replacing or adding files) and the
/// removal of what its `remove:` lists. Removing a file the version does not have, or one
/// its own overlay adds, is an error.
fn tree(
    all: &[(&str, &[u8])],
    chart: &str,
    versions: &[FixtureVersion],
    index: usize,
) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let shared = format!("{chart}/chart/");
    let mut files: BTreeMap<String, Vec<u8>> =
        all.iter().filter_map(|(p, b)| p.strip_prefix(&shared).map(|rel| (rel.to_owned(), b.to_vec()))).collect();
    for step in &versions[..=index] {
        let overlay = format!("{chart}/versions/{}/", step.version);
        let added: BTreeMap<&str, &[u8]> =
            all.iter().filter_map(|(p, b)| p.strip_prefix(&overlay).map(|rel| (rel, *b))).collect();
        for rel in &step.remove {
            if added.contains_key(rel.as_str()) {
                return Err(invalid(format!("{chart} {}: removes {rel}, which its own overlay adds", step.version)));
            }
            if files.remove(rel).is_none() {
                return Err(invalid(format!("{chart} {}: removes {rel}, which it does not have", step.version)));
            }
        }
        files.extend(added.into_iter().map(|(rel, b)| (rel.to_owned(), b.to_vec())));
    }
    Ok(files)
}

/// The versions of a fixture chart, in the order versions.yaml lists them (oldest first).
pub fn versions(chart: &str) -> io::Result<Vec<FixtureVersion>> {
    Ok(versions_file(chart)?.versions)
}

/// The chart's files for one version, paths relative to the chart root, including the
/// generated Chart.yaml. Returned with the fixed mtime of that version.
fn files(chart: &str, version: &str) -> io::Result<(BTreeMap<String, Vec<u8>>, u64)> {
    files_with(chart, version, None)
}

/// [`files`], with `bed.image` set in values.yaml when `bed_image` is given.
fn files_with(chart: &str, version: &str, bed_image: Option<&str>) -> io::Result<(BTreeMap<String, Vec<u8>>, u64)> {
    let vf = versions_file(chart)?;
    let (index, v) = vf
        .versions
        .iter()
        .enumerate()
        .find(|(_, v)| v.version == version)
        .ok_or_else(|| not_found(format!("fixture chart {chart} has no version {version}")))?;
    let mut files = tree(FILES, chart, &vf.versions, index)?;
    let chart_yaml = ChartYaml {
        api_version: "v2",
        name: chart,
        version: &v.version,
        app_version: &v.app_version,
        description: &vf.description,
        kind: "application",
        annotations: &v.annotations,
    };
    let text = yaml_serde::to_string(&chart_yaml).map_err(io::Error::other)?;
    files.insert("Chart.yaml".to_owned(), text.into_bytes());
    if let Some(image) = bed_image {
        let values = files.get_mut("values.yaml").ok_or_else(|| not_found(format!("{chart}: no values.yaml")))?;
        let text = std::str::from_utf8(values).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        *values =
            with_bed_image(text, image).map_err(|e| io::Error::new(e.kind(), format!("{chart}: {e}")))?.into_bytes();
    }
    Ok((files, EPOCH + 86_400 * index as u64))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChartYaml<'a> {
    api_version: &'a str,
    name: &'a str,
    version: &'a str,
    app_version: &'a str,
    description: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// The `.tgz` bytes of one version of a fixture chart.
pub fn chart_tgz(chart: &str, version: &str) -> io::Result<Vec<u8>> {
    let (files, mtime) = files(chart, version)?;
    archive::write_tgz(chart, &files, mtime)
}

/// Packages one version into `out_dir/<chart>-<version>.tgz` (the directory is created).
pub fn package_version(chart: &str, version: &str, out_dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("{chart}-{version}.tgz"));
    std::fs::write(&path, chart_tgz(chart, version)?)?;
    Ok(path)
}

/// Packages every version of one fixture chart into `out_dir`.
pub fn package(chart: &str, out_dir: &Path) -> io::Result<Vec<PathBuf>> {
    versions(chart)?.iter().map(|v| package_version(chart, &v.version, out_dir)).collect()
}

/// Packages every version of every fixture chart into `out_dir`.
pub fn package_all(out_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for chart in CHARTS {
        out.extend(package(chart, out_dir)?);
    }
    Ok(out)
}

/// A fixture chart's `values.yaml` text with `bed.image` set to `image`: the test bed on a
/// real cluster (README "On a real cluster"). Every container whose image does not
/// contain `broken` then runs `image` (a busybox) with a command that stands in for the
/// vendor binary; the default, empty, renders the vendor-like images. Fails if the text
/// has no `bed:` block with an empty `image` (a fixture's values.yaml always has one).
pub fn with_bed_image(values_yaml: &str, image: &str) -> io::Result<String> {
    const EMPTY: &str = "\nbed:\n  image: \"\"\n";
    if values_yaml.matches(EMPTY).count() != 1 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "values.yaml has no `bed:` block with `image: \"\"`"));
    }
    let quoted = serde_json::to_string(image).map_err(io::Error::other)?;
    Ok(values_yaml.replacen(EMPTY, &format!("\nbed:\n  image: {quoted}\n"), 1))
}

/// [`package_version`] with `bed.image` set when `bed_image` is given ([`with_bed_image`]).
pub fn package_version_with(
    chart: &str,
    version: &str,
    out_dir: &Path,
    bed_image: Option<&str>,
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("{chart}-{version}.tgz"));
    let (files, mtime) = files_with(chart, version, bed_image)?;
    std::fs::write(&path, archive::write_tgz(chart, &files, mtime)?)?;
    Ok(path)
}

/// [`package`] with `bed.image` set when `bed_image` is given ([`with_bed_image`]).
pub fn package_with(chart: &str, out_dir: &Path, bed_image: Option<&str>) -> io::Result<Vec<PathBuf>> {
    versions(chart)?.iter().map(|v| package_version_with(chart, &v.version, out_dir, bed_image)).collect()
}

/// [`package_all`] with `bed.image` set when `bed_image` is given ([`with_bed_image`]).
pub fn package_all_with(out_dir: &Path, bed_image: Option<&str>) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for chart in CHARTS {
        out.extend(package_with(chart, out_dir, bed_image)?);
    }
    Ok(out)
}

/// Writes one version as an unpacked chart directory `out_dir/<chart>/` (for
/// `helm template DIR` or `helm install NAME DIR`) and returns its path.
pub fn write_chart_dir(chart: &str, version: &str, out_dir: &Path) -> io::Result<PathBuf> {
    let (files, _) = files(chart, version)?;
    let root = out_dir.join(chart);
    for (rel, data) in files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, data)?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_has_sources_and_versions() {
        for chart in CHARTS {
            let vs = versions(chart).unwrap();
            assert!(vs.len() >= 5, "{chart} has {} versions", vs.len());
            for v in &vs {
                assert!(semver::Version::parse(&v.version).is_ok(), "{chart} {}", v.version);
            }
            assert!(FILES.iter().any(|(p, _)| *p == format!("{chart}/chart/values.yaml")), "{chart}");
        }
        assert!(versions("nope").is_err());
    }

    #[test]
    fn a_bed_image_is_set_in_every_charts_values_and_nowhere_else() {
        for chart in CHARTS {
            // Every version: a version's overlay may bring its own values.yaml.
            for v in versions(chart).unwrap() {
                let (ctx, v) = (format!("{chart} {}", v.version), &v.version);
                let (plain, _) = files(chart, v).unwrap();
                let (bed, _) = files_with(chart, v, Some("busybox:1.36.1")).unwrap();
                assert_eq!(plain.keys().collect::<Vec<_>>(), bed.keys().collect::<Vec<_>>(), "{ctx}");
                for (name, bytes) in &plain {
                    if name == "values.yaml" {
                        let text = String::from_utf8(bed[name].clone()).unwrap();
                        assert!(text.ends_with("bed:\n  image: \"busybox:1.36.1\"\n"), "{ctx}: {text}");
                        let values: serde_json::Value = yaml_serde::from_str(&text).unwrap();
                        assert_eq!(values["bed"]["image"], "busybox:1.36.1", "{ctx}");
                    } else {
                        assert_eq!(bytes, &bed[name], "{ctx}: {name} changed");
                    }
                }
            }
        }
        assert!(with_bed_image("replicas: 1\n", "busybox").is_err(), "no bed block");
    }

    fn version(v: &str, remove: &[&str]) -> FixtureVersion {
        FixtureVersion {
            version: v.to_owned(),
            app_version: v.to_owned(),
            annotations: BTreeMap::new(),
            remove: remove.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn text(files: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String)> {
        files.iter().map(|(k, v)| (k.clone(), String::from_utf8(v.clone()).unwrap())).collect()
    }

    #[test]
    fn overlays_cascade_in_versions_order_and_remove_is_explicit() {
        let all: &[(&str, &[u8])] = &[
            ("c/chart/values.yaml", b"v1"),
            ("c/chart/templates/a.yaml", b"a1"),
            ("c/chart/templates/old.yaml", b"old"),
            ("c/versions/2.0.0/values.yaml", b"v2"),
            ("c/versions/2.0.0/templates/new.yaml", b"new"),
            ("c/versions/3.0.0/templates/a.yaml", b"a3"),
            ("c/versions/4.0.0/templates/old.yaml", b"old again"),
            ("other/versions/9.9.9/x", b"not c's"),
        ];
        let vs = [
            version("1.0.0", &[]),
            version("2.0.0", &[]),
            version("3.0.0", &["templates/old.yaml"]),
            version("4.0.0", &[]),
        ];
        check_overlays(all, "c", &vs).unwrap();
        let at = |i| text(&tree(all, "c", &vs, i).unwrap());
        let pairs = |ps: &[(&str, &str)]| ps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert_eq!(at(0), pairs(&[("templates/a.yaml", "a1"), ("templates/old.yaml", "old"), ("values.yaml", "v1")]));
        assert_eq!(
            at(1),
            pairs(&[
                ("templates/a.yaml", "a1"),
                ("templates/new.yaml", "new"),
                ("templates/old.yaml", "old"),
                ("values.yaml", "v2")
            ])
        );
        // 3.0.0 replaces a.yaml and removes old.yaml; 2.0.0's files carry on.
        assert_eq!(at(2), pairs(&[("templates/a.yaml", "a3"), ("templates/new.yaml", "new"), ("values.yaml", "v2")]));
        // A later overlay may bring a removed file back.
        assert_eq!(
            at(3),
            pairs(&[
                ("templates/a.yaml", "a3"),
                ("templates/new.yaml", "new"),
                ("templates/old.yaml", "old again"),
                ("values.yaml", "v2")
            ])
        );

        let gone = [version("1.0.0", &[]), version("2.0.0", &["templates/nope.yaml"])];
        let err = tree(all, "c", &gone, 1).unwrap_err().to_string();
        assert!(err.contains("removes templates/nope.yaml, which it does not have"), "{err}");
        let own = [version("1.0.0", &[]), version("2.0.0", &["templates/new.yaml"])];
        let err = tree(all, "c", &own, 1).unwrap_err().to_string();
        assert!(err.contains("which its own overlay adds"), "{err}");
        let unlisted = [version("1.0.0", &[]), version("2.0.0", &[]), version("3.0.0", &[])];
        let err = check_overlays(all, "c", &unlisted).unwrap_err().to_string();
        assert!(err.contains("c/versions/4.0.0/ is no version listed in c/versions.yaml"), "{err}");
        let chart_yaml: &[(&str, &[u8])] = &[("c/versions/1.0.0/Chart.yaml", b"x")];
        assert!(check_overlays(chart_yaml, "c", &vs).is_err());
    }

    #[test]
    fn vendorapp_ships_its_upgrade_policy_from_1_2_0() {
        let policy_of = |version: &str| {
            let (files, _) = files("vendorapp", version).unwrap();
            let chart_yaml: serde_json::Value = yaml_serde::from_slice(&files["Chart.yaml"]).unwrap();
            let named = chart_yaml["annotations"]["helm-safe-upgrade/policy"].as_str().map(str::to_owned);
            let text = files.get("upgrade-policy.yaml").map(|b| String::from_utf8(b.clone()).unwrap());
            (named, text)
        };
        for version in ["1.0.0", "1.1.0"] {
            assert_eq!(policy_of(version), (None, None), "{version}");
        }
        let shipped = |version: &str| {
            let (named, text) = policy_of(version);
            assert_eq!(named.as_deref(), Some("upgrade-policy.yaml"), "{version}");
            text.unwrap_or_else(|| panic!("{version} ships no upgrade-policy.yaml"))
        };
        let first = shipped("1.2.0");
        assert!(first.contains("required_stops: [\"1.2.0\"]") && !first.contains("run:"), "{first}");
        assert_eq!(shipped("1.3.0"), first);
        assert_eq!(shipped("1.4.0"), first);
        assert!(shipped("1.5.0").contains("- run: {name: prepare the database"));
        assert!(shipped("1.6.0").contains("max_minor_stpe"), "1.6.0 ships a policy with a typo");
    }

    #[test]
    fn packaging_is_deterministic_and_carries_chart_yaml() {
        let a = chart_tgz("bsr", "1.1.0").unwrap();
        assert_eq!(a, chart_tgz("bsr", "1.1.0").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = package_version("bsr", "1.1.0", dir.path()).unwrap();
        let archive = archive::ChartArchive::read(&path).unwrap();
        assert_eq!(archive.name(), "bsr");
        assert_eq!(archive.version(), "1.1.0");
        assert_eq!(archive.metadata["apiVersion"], "v2");
        assert_eq!(archive.metadata["annotations"]["bsr.example/schema-version"], "222");
        assert_eq!(archive.mtime, EPOCH + 2 * 86_400);
    }
}
