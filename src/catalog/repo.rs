//! Versions of a chart in a helm repository, from `helm search repo --versions -o json`.
//!
//! Parsing only: helm does the listing (it owns the repository index and its
//! credentials), `crate::helm` runs it.

use crate::plan::Available;
use crate::version::ChartVersion;

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
