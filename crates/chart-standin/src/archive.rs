//! Chart archives (`<name>-<version>.tgz`): writing them deterministically and reading
//! the `Chart.yaml` back out of them. Owns the byte layout only; it knows nothing about
//! fixtures or servers.
//!
//! Layout follows `helm package`: gzip over tar, every path under one top-level
//! directory named after the chart (`bsr/Chart.yaml`, `bsr/templates/…`), regular files
//! only. helm's loader (pkg/chart/loader/archive.go) strips that first path element.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder, read::GzDecoder};
use sha2::{Digest, Sha256};

/// One packaged chart found on disk.
#[derive(Debug, Clone)]
pub struct ChartArchive {
    /// Where the `.tgz` lives.
    pub path: PathBuf,
    /// The archive's bytes.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// `Chart.yaml` as a JSON object (helm's `chart.Metadata` uses the same field names
    /// in YAML and JSON, so this is also the OCI config blob).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Modification time of `Chart.yaml` inside the archive (seconds since the epoch);
    /// used as the `created` time in index.yaml and in OCI annotations.
    pub mtime: u64,
}

impl ChartArchive {
    /// The chart name from `Chart.yaml`.
    pub fn name(&self) -> &str {
        self.metadata.get("name").and_then(|v| v.as_str()).unwrap_or_default()
    }

    /// The chart version from `Chart.yaml`.
    pub fn version(&self) -> &str {
        self.metadata.get("version").and_then(|v| v.as_str()).unwrap_or_default()
    }

    /// Reads a `.tgz` and its `Chart.yaml`.
    pub fn read(path: &Path) -> io::Result<ChartArchive> {
        let bytes = std::fs::read(path)?;
        let (metadata, mtime) =
            read_chart_yaml(&bytes).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(ChartArchive { path: path.to_owned(), digest: sha256_digest(&bytes), bytes, metadata, mtime })
    }

    /// Every `*.tgz` in `dir` that holds a readable chart, sorted by file name. Files
    /// that are not charts are skipped (a directory of packaged charts may hold others).
    pub fn read_dir(dir: &Path) -> io::Result<Vec<ChartArchive>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tgz") && p.is_file())
            .collect();
        paths.sort();
        Ok(paths.iter().filter_map(|p| ChartArchive::read(p).ok()).collect())
    }
}

/// `sha256:<lower-case hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a chart archive: `files` are paths relative to the chart root (they are put
/// under `<name>/`), written in sorted order, mode 0644, uid/gid 0, every mtime `mtime`,
/// gzip header mtime 0. The same input always gives the same bytes.
pub fn write_tgz(name: &str, files: &BTreeMap<String, Vec<u8>>, mtime: u64) -> io::Result<Vec<u8>> {
    let gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Deterministic);
    for (rel, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(format!("{name}/{rel}"))?;
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, data.as_slice())?;
    }
    builder.into_inner()?.finish()
}

/// Finds `<top>/Chart.yaml` in a chart archive and parses it.
fn read_chart_yaml(tgz: &[u8]) -> io::Result<(serde_json::Map<String, serde_json::Value>, u64)> {
    let mut archive = tar::Archive::new(GzDecoder::new(tgz));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && path.file_name().is_some_and(|n| n == "Chart.yaml") {
            let mtime = entry.header().mtime().unwrap_or(0);
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let value: serde_json::Value = yaml_serde::from_str(&text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("Chart.yaml: {e}")))?;
            return match value {
                serde_json::Value::Object(map) => Ok((map, mtime)),
                _ => Err(io::Error::new(io::ErrorKind::InvalidData, "Chart.yaml is not a mapping")),
            };
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "no <chart>/Chart.yaml in the archive"))
}

/// RFC 3339 UTC time (`2024-01-01T00:00:00Z`) for seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn tgz_is_deterministic_and_readable() {
        let mut files = BTreeMap::new();
        files.insert("Chart.yaml".to_owned(), b"apiVersion: v2\nname: x\nversion: 1.2.3\n".to_vec());
        files.insert("templates/a.yaml".to_owned(), b"a: 1\n".to_vec());
        let a = write_tgz("x", &files, 1_704_067_200).unwrap();
        let b = write_tgz("x", &files, 1_704_067_200).unwrap();
        assert_eq!(a, b);
        let (meta, mtime) = read_chart_yaml(&a).unwrap();
        assert_eq!(meta["version"], "1.2.3");
        assert_eq!(mtime, 1_704_067_200);
    }
}
