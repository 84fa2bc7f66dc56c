//! The vendor-like fixture charts embedded from `charts/` (see build.rs) and their
//! packaging into `<name>-<version>.tgz` files.
//!
//! Each chart has one source tree (`charts/<name>/chart/`: values.yaml, templates/) and a
//! `charts/<name>/versions.yaml` listing its versions. Packaging writes a `Chart.yaml`
//! per version (apiVersion v2) next to the shared sources. Output is deterministic: the
//! `Chart.yaml` mtime (which becomes `created` in index.yaml) is a fixed day per version,
//! in the order versions.yaml lists them, starting 2024-01-01.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive;

include!(concat!(env!("OUT_DIR"), "/fixture_files.rs"));

/// The fixture charts, by name.
pub const CHARTS: [&str; 4] = ["bsr", "coder", "generic-app", "sourcegraph"];

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

fn versions_file(chart: &str) -> io::Result<VersionsFile> {
    let key = format!("{chart}/versions.yaml");
    let (_, bytes) = FILES
        .iter()
        .find(|(p, _)| *p == key)
        .ok_or_else(|| not_found(format!("no fixture chart {chart:?} (known: {})", CHARTS.join(", "))))?;
    yaml_serde::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{key}: {e}")))
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
    let prefix = format!("{chart}/chart/");
    let mut files: BTreeMap<String, Vec<u8>> =
        FILES.iter().filter_map(|(p, b)| p.strip_prefix(&prefix).map(|rel| (rel.to_owned(), b.to_vec()))).collect();
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
            assert!(vs.len() >= 6, "{chart} has {} versions", vs.len());
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
            let v = &versions(chart).unwrap()[0].version;
            let (plain, _) = files(chart, v).unwrap();
            let (bed, _) = files_with(chart, v, Some("busybox:1.36.1")).unwrap();
            assert_eq!(plain.keys().collect::<Vec<_>>(), bed.keys().collect::<Vec<_>>(), "{chart}");
            for (name, bytes) in &plain {
                if name == "values.yaml" {
                    let text = String::from_utf8(bed[name].clone()).unwrap();
                    assert!(text.ends_with("bed:\n  image: \"busybox:1.36.1\"\n"), "{chart}: {text}");
                    let values: serde_json::Value = yaml_serde::from_str(&text).unwrap();
                    assert_eq!(values["bed"]["image"], "busybox:1.36.1", "{chart}");
                } else {
                    assert_eq!(bytes, &bed[name], "{chart}: {name} changed");
                }
            }
        }
        assert!(with_bed_image("replicas: 1\n", "busybox").is_err(), "no bed block");
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
