//! Versions of a chart in a helm repository, from `helm search repo --versions -o json`.
//!
//! Parsing only: helm does the listing (it owns the repository index and its
//! credentials), `crate::helm` runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::Available;
use crate::version::ChartVersion;

/// Larger cached indexes are not read: asking helm for the chart costs less.
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

/// Where helm caches `repo`'s index after `helm repo update`: `HELM_REPOSITORY_CACHE`
/// (helm sets it for plugins), else helmpath's rules (`HELM_CACHE_HOME`, then
/// `XDG_CACHE_HOME/helm`, then the platform default) with `repository/`.
pub fn cached_index(var: impl Fn(&str) -> Option<String>, home: Option<&Path>, repo: &str) -> PathBuf {
    let set = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = set(crate::env::HELM_REPOSITORY_CACHE).unwrap_or_else(|| {
        let helm_cache = set(crate::env::HELM_CACHE_HOME).unwrap_or_else(|| match set(crate::env::XDG_CACHE_HOME) {
            Some(xdg) => xdg.join("helm"),
            None => {
                let home = home.map(Path::to_path_buf).unwrap_or_default();
                if cfg!(target_os = "macos") { home.join("Library/Caches/helm") } else { home.join(".cache/helm") }
            }
        });
        helm_cache.join("repository")
    });
    cache.join(format!("{repo}-index.yaml"))
}

/// Where helm caches `repo`'s index for this process's environment ([`cached_index`]).
pub fn cached_index_here(repo: &str) -> PathBuf {
    cached_index(crate::env::get, crate::env::path(crate::env::HOME).as_deref(), repo)
}

/// Whether the repository index at `index` says that chart `name` at `version` names no
/// policy file (no `helm-safe-upgrade/policy` annotation): then it need not be fetched to
/// be read. None when the index cannot say (unreadable, too large, no such entry): fetch
/// it. An index without the annotation anywhere says so without being parsed, which is
/// how most repositories' large indexes are answered.
pub fn index_says_no_policy(index: &Path, name: &str, version: &ChartVersion) -> Option<bool> {
    let text = read_index(index)?;
    if !text.contains(super::shipped::POLICY_ANNOTATION) {
        return Some(true);
    }
    let entry = chart_entries(&text, name)?.into_iter().find(|e| e.version == version.original())?;
    Some(!entry.annotations.as_ref().is_some_and(|a| a.contains_key(super::shipped::POLICY_ANNOTATION)))
}

/// The digest (`sha256:<hex>`) the repository index at `index` gives for each version of
/// chart `name`, by the version as the index spells it: what an archive kept from an
/// earlier run must match to stand for the one `helm pull` would fetch now. Versions
/// without a well-formed sha256 digest are left out; empty when the index cannot say.
pub fn index_digests(index: &Path, name: &str) -> BTreeMap<String, String> {
    let Some(text) = read_index(index) else { return BTreeMap::new() };
    chart_entries(&text, name)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            // helm writes the bare hex; any case, with or without the prefix, is read.
            let digest = e.digest?.to_ascii_lowercase();
            let digest = format!("sha256:{}", digest.strip_prefix("sha256:").unwrap_or(&digest));
            crate::digest::sha256_hex(&digest).is_some().then_some((e.version, digest))
        })
        .collect()
}

/// The text of a cached index, unless it is missing, unreadable or over [`MAX_INDEX_BYTES`].
fn read_index(index: &Path) -> Option<String> {
    if std::fs::metadata(index).ok()?.len() > MAX_INDEX_BYTES {
        return None;
    }
    std::fs::read_to_string(index).ok()
}

/// The entries of chart `name` in the index `text`; None when it cannot be read.
///
/// A busy repository's index holds every version of every chart (tens of MB): parsed
/// whole, a 20 MB index takes the tool 2.6 s, far more than the pull it may save. helm
/// writes its index in block style, two spaces a level (`entries:`, then `  name:` and
/// its list), so the chart's own lines are cut out first and only they are parsed (0.1 s
/// for that index, reading the file included). An index laid out otherwise (JSON, say)
/// is parsed whole only up to [`MAX_WHOLE_INDEX_BYTES`]: a larger one cannot say, and the
/// chart is fetched as it would be without it.
fn chart_entries(text: &str, name: &str) -> Option<Vec<Entry>> {
    let whole: std::borrow::Cow<str> = match chart_lines(text, name) {
        Some(lines) => format!("entries:\n{lines}").into(),
        None if text.len() <= MAX_WHOLE_INDEX_BYTES => text.into(),
        None => return None,
    };
    let mut parsed: Index = serde_saphyr::from_str(&whole).ok()?;
    parsed.entries.remove(name)
}

/// The largest index not laid out as helm writes it that is parsed whole (about half a
/// second's work).
const MAX_WHOLE_INDEX_BYTES: usize = 4 * 1024 * 1024;

/// The lines of chart `name` in an index helm wrote: from its `  name:` line under the
/// top-level `entries:` to the next chart's key (two spaces, then neither a space nor a
/// list's `-`) or the next top-level key. None when the index is not laid out so.
fn chart_lines<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let key = format!("\n  {name}:\n");
    let start = text.find(&key)? + 1;
    let top_level = |line: &str| !line.is_empty() && !line.starts_with([' ', '#', '\t']);
    if text[..start].lines().rev().find(|l| top_level(l)) != Some("entries:") {
        return None;
    }
    let rest = &text[start..];
    let mut end = rest.len();
    let mut offset = key.len() - 1;
    for line in rest[offset..].split_inclusive('\n') {
        let next_chart = line.strip_prefix("  ").is_some_and(|l| !l.starts_with([' ', '-', '\n', '#']));
        if next_chart || top_level(line.trim_end_matches('\n')) {
            end = offset;
            break;
        }
        offset += line.len();
    }
    Some(&rest[..end])
}

/// What the tool reads of a repository index: each chart's versions.
#[derive(serde::Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<Entry>>,
}

/// One version of a chart in an index: its `Chart.yaml` metadata and the archive's digest.
#[derive(serde::Deserialize)]
struct Entry {
    version: String,
    #[serde(default)]
    annotations: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    digest: Option<String>,
}

/// The versions of exactly `repo/name`. `search repo` matches substrings of names and
/// descriptions (`bsr` also finds `bsr-tools`), so other charts are filtered out here.
pub fn parse_search(json: &str, repo: &str, name: &str) -> Result<Vec<Available>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Entry {
        name: String,
        version: String,
        #[serde(default)]
        app_version: String,
    }
    let entries: Vec<Entry> = serde_json::from_str(json)?;
    let full = format!("{repo}/{name}");
    Ok(entries
        .into_iter()
        .filter(|e| e.name == full)
        .filter_map(|e| {
            ChartVersion::parse(&e.version)
                .ok()
                .map(|version| Available { version, app_version: (!e.app_version.is_empty()).then_some(e.app_version) })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_index_is_where_helm_keeps_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let home = Some(Path::new("/home/op"));
        assert_eq!(
            cached_index(env(&[("HELM_REPOSITORY_CACHE", "/rc")]), home, "demo"),
            Path::new("/rc/demo-index.yaml")
        );
        assert_eq!(
            cached_index(env(&[("HELM_CACHE_HOME", "/hc")]), home, "demo"),
            Path::new("/hc/repository/demo-index.yaml")
        );
        assert_eq!(
            cached_index(env(&[("XDG_CACHE_HOME", "/x")]), home, "demo"),
            Path::new("/x/helm/repository/demo-index.yaml")
        );
        if !cfg!(target_os = "macos") {
            assert_eq!(
                cached_index(env(&[]), home, "demo"),
                Path::new("/home/op/.cache/helm/repository/demo-index.yaml")
            );
        }
    }

    #[test]
    fn the_index_says_which_versions_name_no_policy() {
        let dir = tempfile::tempdir().unwrap();
        let v = |s: &str| ChartVersion::parse(s).unwrap();
        let plain = dir.path().join("plain-index.yaml");
        std::fs::write(&plain, "apiVersion: v1\nentries:\n  bsr:\n  - version: 1.0.0\n    name: bsr\n").unwrap();
        assert_eq!(index_says_no_policy(&plain, "bsr", &v("1.0.0")), Some(true), "no annotation anywhere");
        let vendor = dir.path().join("vendor-index.yaml");
        std::fs::write(
            &vendor,
            "apiVersion: v1\nentries:\n  app:\n  - version: 1.1.0\n    annotations:\n      helm-safe-upgrade/policy: p.yaml\n  - version: 1.0.0\n    annotations:\n      other: x\n",
        )
        .unwrap();
        assert_eq!(index_says_no_policy(&vendor, "app", &v("1.1.0")), Some(false));
        assert_eq!(index_says_no_policy(&vendor, "app", &v("1.0.0")), Some(true));
        assert_eq!(index_says_no_policy(&vendor, "app", &v("2.0.0")), None, "no such entry: ask helm");
        assert_eq!(index_says_no_policy(&vendor, "other", &v("1.0.0")), None);
        assert_eq!(index_says_no_policy(&dir.path().join("missing.yaml"), "app", &v("1.0.0")), None);
        let broken = dir.path().join("broken-index.yaml");
        std::fs::write(&broken, "entries: [helm-safe-upgrade/policy\n").unwrap();
        assert_eq!(index_says_no_policy(&broken, "app", &v("1.0.0")), None, "unreadable: ask helm");
    }
    #[test]
    fn the_index_gives_each_versions_digest() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "4b6d".repeat(16);
        let index = dir.path().join("demo-index.yaml");
        std::fs::write(
            &index,
            format!(
                "apiVersion: v1\nentries:\n  bsr:\n  - version: 1.1.9\n    digest: {hex}\n  - version: v1.2.0\n    digest: sha256:{upper}\n  - version: 1.3.0\n    digest: not-a-digest\n  - version: 1.4.0\n  other:\n  - version: 9.0.0\n    digest: {hex}\n",
                upper = hex.to_uppercase()
            ),
        )
        .unwrap();
        let digests = index_digests(&index, "bsr");
        let want = format!("sha256:{hex}");
        assert_eq!(digests.get("1.1.9"), Some(&want));
        assert_eq!(digests.get("v1.2.0"), Some(&want), "as the index spells the version; any case, any prefix");
        assert_eq!(digests.len(), 2, "no digest, or no sha256 digest, is no digest: {digests:?}");
        assert!(index_digests(&index, "absent").is_empty());
        assert!(index_digests(&dir.path().join("missing.yaml"), "bsr").is_empty());
        std::fs::write(&index, "entries: [").unwrap();
        assert!(index_digests(&index, "bsr").is_empty(), "unreadable: no digest");
    }

    #[test]
    fn a_large_index_is_read_for_one_chart_whatever_its_layout() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("big-index.yaml");
        let digest = |c: usize, v: usize| format!("{c:032x}{v:032x}");
        // 60 charts of 1,000 versions: far over the YAML reader's default of 250,000 nodes.
        let entry = |c: usize, v: usize| {
            format!(
                "  - apiVersion: v2\n    description: |\n      chart{c}:\n      entries:\n    digest: {}\n    name: chart{c}\n    urls:\n    - https://charts.example/chart{c}-{v}.0.0.tgz\n    version: {v}.0.0\n",
                digest(c, v)
            )
        };
        let mut text = String::from("apiVersion: v1\nentries:\n");
        for c in 0..60 {
            text.push_str(&format!("  chart{c}:\n"));
            (0..1000).for_each(|v| text.push_str(&entry(c, v)));
        }
        text.push_str(
            "generated: \"2026-11-30T00:00:00Z\"\nserverInfo:\n  chart7:\n  - version: 0.0.1\n    digest: x\n",
        );
        std::fs::write(&index, &text).unwrap();
        let found = index_digests(&index, "chart7");
        assert_eq!(found.len(), 1000);
        assert_eq!(found["999.0.0"], format!("sha256:{}", digest(7, 999)));
        assert_eq!(index_digests(&index, "chart59").len(), 1000, "the last chart ends at the next top-level key");
        assert_eq!(index_says_no_policy(&index, "chart7", &ChartVersion::parse("3.0.0").unwrap()), Some(true));
        // An index as JSON (which is YAML too), not laid out as helm writes YAML: read
        // whole, up to MAX_WHOLE_INDEX_BYTES; a larger one cannot say.
        let as_json = |charts: usize| {
            let charts: serde_json::Map<String, serde_json::Value> = (0..charts)
                .map(|c| {
                    let versions = (0..1000).map(|v| {
                        serde_json::json!({"name": format!("chart{c}"), "version": format!("{v}.0.0"), "digest": digest(c, v)})
                    });
                    (format!("chart{c}"), versions.collect())
                })
                .collect();
            serde_json::json!({"apiVersion": "v1", "entries": charts}).to_string()
        };
        std::fs::write(&index, as_json(8)).unwrap();
        let found = index_digests(&index, "chart7");
        assert_eq!(found.len(), 1000);
        assert_eq!(found["0.0.0"], format!("sha256:{}", digest(7, 0)));
        let large = as_json(60);
        assert!(large.len() > MAX_WHOLE_INDEX_BYTES);
        std::fs::write(&index, large).unwrap();
        assert!(index_digests(&index, "chart7").is_empty());
    }

    #[test]
    fn keeps_only_the_exact_chart_with_app_versions() {
        // As helm 3.19.0 and 4.1.4 print it, with a substring match helm also returns.
        let json = r#"[{"name":"demo/bsr","version":"1.3.0","app_version":"2.2.0","description":"x"},
                      {"name":"demo/bsr-tools","version":"9.9.9","app_version":"","description":"x"},
                      {"name":"demo/bsr","version":"v1.2.0","app_version":"","description":"x"}]"#;
        let found = super::parse_search(json, "demo", "bsr").unwrap();
        let versions: Vec<String> = found.iter().map(|a| a.version.to_string()).collect();
        assert_eq!(versions, ["1.3.0", "v1.2.0"]);
        assert_eq!(found[0].app_version.as_deref(), Some("2.2.0"));
        assert_eq!(found[1].app_version, None);
        assert!(super::parse_search("not json", "demo", "bsr").is_err());
    }

    #[test]
    fn twenty_thousand_absurd_versions_parse_in_linear_time() {
        let tags = crate::catalog::absurd_tags(20_000);
        let entries: Vec<serde_json::Value> = tags
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = if i % 10 == 9 { "demo/bsr-tools" } else { "demo/bsr" };
                serde_json::json!({"name": name, "version": t, "app_version": "", "description": "x"})
            })
            .collect();
        let json = serde_json::to_string(&entries).unwrap();
        let started = std::time::Instant::now();
        let found = super::parse_search(&json, "demo", "bsr").unwrap();
        let took = started.elapsed();
        let expected = tags
            .iter()
            .enumerate()
            .filter(|(i, t)| i % 10 != 9 && crate::version::ChartVersion::parse(t).is_ok())
            .count();
        assert_eq!(found.len(), expected);
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
}
