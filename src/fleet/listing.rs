//! What the fleet view's two list reads say, parsed without I/O: `helm list -o json`
//! (every release, one process however many there are) and the tool's ledger ConfigMaps
//! (one API request).

use std::collections::BTreeMap;

use crate::run::ledger::{self, LedgerConfigMap};
use crate::version::ChartVersion;

/// One release as `helm list -o json` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub namespace: String,
    pub name: String,
    /// The chart's name and version, split from helm's `NAME-VERSION`; None when no split
    /// reads (helm prints `MISSING` for a release without a chart).
    pub chart: Option<(String, ChartVersion)>,
    /// helm's `chart` field as printed, for a release whose chart cannot be read.
    pub chart_text: String,
    pub status: String,
    pub revision: String,
}

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    chart: String,
    #[serde(default)]
    status: String,
    /// A string in both helms' JSON, read either way.
    #[serde(default)]
    revision: serde_json::Value,
}

/// `helm list -o json` (an empty list is `[]`), sorted by namespace and name.
pub fn parse_helm_list(json: &str) -> Result<Vec<Listed>, String> {
    let entries: Vec<Entry> =
        serde_json::from_str(json.trim()).map_err(|e| format!("helm list printed what is not its JSON: {e}"))?;
    let mut listed: Vec<Listed> = entries
        .into_iter()
        .map(|e| Listed {
            chart: split_chart(&e.chart),
            chart_text: e.chart,
            revision: match e.revision {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            },
            namespace: e.namespace,
            name: e.name,
            status: e.status,
        })
        .collect();
    listed.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(listed)
}

/// helm prints a release's chart as `NAME-VERSION`, and both may hold dashes
/// (`my-chart-1.0.0-rc.1`): the split is at the first dash after which a version reads.
/// Chart names are lowercase letters, digits and dashes, so a name never ends where a
/// version would start unless that dash is the separator.
pub fn split_chart(text: &str) -> Option<(String, ChartVersion)> {
    text.match_indices('-').find_map(|(at, _)| {
        let (name, version) = (&text[..at], &text[at + 1..]);
        if name.is_empty() {
            return None;
        }
        ChartVersion::parse(version).ok().map(|v| (name.to_string(), v))
    })
}

/// Ledgers by (namespace, release), each read or the reason it cannot be.
pub type Ledgers = BTreeMap<(String, String), Result<ledger::Ledger, String>>;

/// The ledgers a list of ConfigMaps holds, by (namespace, release). A ConfigMap without
/// the tool's label is not in the list (the selector); one whose record cannot be read is
/// returned as its error, to be said on that release's line.
pub fn parse_ledgers(objects: &[serde_json::Value]) -> Ledgers {
    let mut found = BTreeMap::new();
    for object in objects {
        let metadata = &object["metadata"];
        let namespace = metadata["namespace"].as_str().unwrap_or_default();
        let release = metadata["labels"][ledger::RELEASE_LABEL]
            .as_str()
            .or_else(|| metadata["name"].as_str()?.strip_prefix("helm-safe-upgrade."))
            .unwrap_or_default();
        if release.is_empty() {
            continue;
        }
        let configmap = LedgerConfigMap::new(release, namespace);
        // Only the ConfigMap named for the release is its ledger: a copy under another name
        // carrying the labels is not.
        if metadata["name"].as_str() != Some(configmap.name().as_str()) {
            continue;
        }
        let read = configmap.parse_for_showing(object).map(|shown| shown.ledger).map_err(|e| e.to_string());
        found.insert((namespace.to_string(), release.to_string()), read);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ChartVersion {
        ChartVersion::parse(s).unwrap()
    }

    #[test]
    fn chart_names_and_versions_with_dashes_are_split_where_a_version_starts() {
        assert_eq!(split_chart("bsr-1.0.4"), Some(("bsr".into(), v("1.0.4"))));
        assert_eq!(split_chart("my-chart-1.0.0-rc.1"), Some(("my-chart".into(), v("1.0.0-rc.1"))));
        assert_eq!(split_chart("gitlab-v8.1.2"), Some(("gitlab".into(), v("v8.1.2"))));
        assert_eq!(split_chart("app-2-3.1.0"), Some(("app-2".into(), v("3.1.0"))));
        assert_eq!(split_chart("MISSING"), None);
        assert_eq!(split_chart("-1.0.0"), None);
        assert_eq!(split_chart("chart-latest"), None);
    }

    #[test]
    fn both_helms_lists_are_read_and_sorted() {
        let json = r#"[{"name":"web","namespace":"b","revision":"4","updated":"x","status":"deployed","chart":"bsr-1.2.0","app_version":"2.1.0"},
                       {"name":"api","namespace":"a","revision":7,"status":"failed","chart":"MISSING"}]"#;
        let listed = parse_helm_list(json).unwrap();
        assert_eq!(listed.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["api", "web"]);
        assert_eq!(listed[0].revision, "7");
        assert_eq!(listed[0].chart, None);
        assert_eq!(listed[0].chart_text, "MISSING");
        assert_eq!(listed[1].chart, Some(("bsr".into(), v("1.2.0"))));
        assert_eq!(listed[1].revision, "4");
        assert!(parse_helm_list("[]\n").unwrap().is_empty());
        assert!(parse_helm_list("Error: nope").unwrap_err().contains("not its JSON"));
    }

    #[test]
    fn ledgers_are_found_by_namespace_and_release_and_a_bad_one_is_its_error() {
        let good = LedgerConfigMap::new("bsr", "team-a").object(&ledger::Ledger::new("bsr", "team-a"), None).unwrap();
        let mut bad =
            LedgerConfigMap::new("web", "team-b").object(&ledger::Ledger::new("web", "team-b"), None).unwrap();
        bad["data"][ledger::DATA_KEY] = serde_json::json!("{not json");
        let mut renamed = good.clone();
        renamed["metadata"]["name"] = serde_json::json!("copy-of-ledger");
        let found = parse_ledgers(&[good, bad, renamed]);
        assert_eq!(found.len(), 2);
        assert!(found[&("team-a".to_string(), "bsr".to_string())].is_ok());
        assert!(found[&("team-b".to_string(), "web".to_string())].is_err());
    }
}
