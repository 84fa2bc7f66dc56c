//! The live release, read through helm and parsed from `-o json` into typed state.
//!
//! Three questions are asked in parallel: `helm get metadata -o json` (the chart's name
//! and version: the cleanest source, since `status -o json` drops the chart, and splitting
//! the `name-version` of `history` breaks on names with dashes), `helm history -o json`
//! (every revision, its chart and its outcome) and `helm status -o json` (the last
//! operation's description, the user-supplied values in `config` — exactly what must be
//! carried to every hop — and the manifest, which the backup keeps).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::helm::{ExecError, Helm, recorded_values};
use crate::kube::KubeClient;
use crate::version::ChartVersion;

/// helm's release statuses. Only the three `pending-*` count as "pending": a helm
/// operation started and did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    Unknown,
    Deployed,
    Uninstalled,
    Superseded,
    Failed,
    Uninstalling,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
}

impl ReleaseStatus {
    pub fn is_pending(self) -> bool {
        matches!(self, ReleaseStatus::PendingInstall | ReleaseStatus::PendingUpgrade | ReleaseStatus::PendingRollback)
    }

    /// A status as helm spells it (a label of its storage objects, `pending-upgrade`);
    /// `Unknown` for anything else.
    pub fn from_label(label: &str) -> ReleaseStatus {
        serde_json::from_value(serde_json::Value::String(label.to_string())).unwrap_or(ReleaseStatus::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Unknown => "unknown",
            ReleaseStatus::Deployed => "deployed",
            ReleaseStatus::Uninstalled => "uninstalled",
            ReleaseStatus::Superseded => "superseded",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Uninstalling => "uninstalling",
            ReleaseStatus::PendingInstall => "pending-install",
            ReleaseStatus::PendingUpgrade => "pending-upgrade",
            ReleaseStatus::PendingRollback => "pending-rollback",
        }
    }
}

/// `helm get metadata -o json` (helm ≥ 3.13), e.g. `{"name":"bsr","chart":"bsr",
/// "version":"1.2.0","appVersion":"2.1.0","namespace":"foo","revision":4,"status":"deployed"}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    pub chart: String,
    pub version: String,
    #[serde(default)]
    pub app_version: Option<String>,
    pub namespace: String,
    pub revision: u64,
    pub status: ReleaseStatus,
}

/// One entry of `helm history -o json`.
#[derive(Clone, Debug, Deserialize)]
pub struct HistoryEntry {
    pub revision: u64,
    #[serde(default)]
    pub updated: String,
    pub status: ReleaseStatus,
    /// `<name>-<version>`, or `MISSING`.
    pub chart: String,
    #[serde(default)]
    pub app_version: String,
    #[serde(default)]
    pub description: String,
}

/// `helm status -o json`: helm drops the chart from it, but keeps the user-supplied
/// values (`config`) and the manifest.
#[derive(Clone, Debug, Deserialize)]
struct StatusDoc {
    info: StatusInfo,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    manifest: String,
}

#[derive(Clone, Debug, Deserialize)]
struct StatusInfo {
    #[serde(default)]
    description: String,
}

/// One revision as helm stores it (the parts read here; helm's release v1 document).
#[derive(Clone, Debug, Deserialize)]
struct StoredRelease {
    name: String,
    namespace: String,
    version: u64,
    info: StoredInfo,
    #[serde(default)]
    chart: Option<StoredChart>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    manifest: String,
}

#[derive(Clone, Debug, Deserialize)]
struct StoredInfo {
    status: ReleaseStatus,
    #[serde(default)]
    description: String,
}

#[derive(Clone, Debug, Deserialize)]
struct StoredChart {
    #[serde(default)]
    metadata: ChartMetadata,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChartMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    app_version: Option<String>,
}

/// A revision with its chart version worked out.
#[derive(Clone, Debug)]
pub struct Revision {
    pub revision: u64,
    pub status: ReleaseStatus,
    pub version: Option<ChartVersion>,
    pub description: String,
}

/// What the tool knows about the live release.
#[derive(Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart_name: String,
    pub version: ChartVersion,
    pub app_version: Option<String>,
    pub revision: u64,
    pub status: ReleaseStatus,
    pub description: String,
    pub history: Vec<Revision>,
    /// User-supplied values (`{}` when there were none; helm prints `null`).
    pub user_values: serde_json::Value,
    /// The rendered manifest of the current revision, for the backup.
    pub manifest: String,
    /// Every stored revision's user values (`{}` for none), as `helm get values
    /// --revision N` prints them, when the release was read from helm's storage (each
    /// stored revision holds its own); None when it was read through helm, which prints
    /// only the current revision's. In memory only: they may hold secrets.
    pub stored_values: Option<BTreeMap<u64, serde_json::Value>>,
}

impl std::fmt::Debug for Release {
    // Never a value, nor the manifest (a Secret's data is in it): a Debug print in a
    // test failure or a log must not leak one. Their keys and sizes say enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = crate::plan::chart_values::leaf_keys(&self.user_values);
        f.debug_struct("Release")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("chart_name", &self.chart_name)
            .field("version", &self.version)
            .field("app_version", &self.app_version)
            .field("revision", &self.revision)
            .field("status", &self.status)
            .field("description", &self.description)
            .field("history", &self.history)
            .field("user_values (keys)", &keys)
            .field("manifest (bytes)", &self.manifest.len())
            .field("stored_values (revisions)", &self.stored_values.as_ref().map(|s| s.keys().collect::<Vec<_>>()))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "release {release:?} not found in namespace {namespace:?}\nhint: check the name and namespace with `helm list --namespace {namespace}` (helm's -n reaches this plugin as HELM_NAMESPACE)"
    )]
    NotFound { release: String, namespace: String },
    #[error(transparent)]
    Helm(#[from] ExecError),
    #[error(
        "release {release:?} reports chart version {version:?}, which is not a version this tool can order: {reason}"
    )]
    BadVersion { release: String, version: String, reason: String },
}

impl Release {
    /// Ask helm, in parallel.
    pub fn read(helm: &Helm, release: &str) -> Result<Release, ReadError> {
        let (metadata, history, status) = std::thread::scope(|s| {
            let m = s.spawn(|| helm.metadata::<Metadata>(format!("read the metadata of {release}"), release));
            let h = s.spawn(|| helm.history::<Vec<HistoryEntry>>(release));
            let st = s.spawn(|| helm.status::<StatusDoc>(release));
            (m.join().expect("reader thread"), h.join().expect("reader thread"), st.join().expect("reader thread"))
        });
        let not_found = |e: &ExecError| e.stderr().contains("release: not found");
        let metadata = metadata.map_err(|e| {
            if not_found(&e) { ReadError::not_found(release, &helm.namespace) } else { ReadError::Helm(e) }
        })?;
        let history = history?;
        let status = status?;
        let version = reported_version(release, &metadata.version)?;
        Ok(Release {
            history: history
                .iter()
                .map(|h| Revision {
                    revision: h.revision,
                    status: h.status,
                    version: version_from_chart_field(&h.chart, &metadata.chart),
                    description: h.description.clone(),
                })
                .collect(),
            name: metadata.name,
            namespace: metadata.namespace,
            chart_name: metadata.chart,
            version,
            app_version: metadata.app_version.filter(|a| !a.is_empty()),
            revision: metadata.revision,
            status: metadata.status,
            description: status.info.description,
            user_values: recorded_values(status.config),
            manifest: status.manifest,
            stored_values: None,
        })
    }

    /// Through the API client when it can read helm's storage, else through helm.
    pub fn read_through(kube: Option<&KubeClient>, helm: &Helm, release: &str) -> Result<Release, ReadError> {
        kube.and_then(|kube| Release::read_stored(kube, release)).unwrap_or_else(|| Release::read(helm, release))
    }

    /// Read from helm's storage through the API client: one request for what
    /// [`Release::read`] asks three helm processes for, from the same documents helm
    /// reads. None when the client cannot read helm's storage (another `HELM_DRIVER`, no
    /// answer, a document it cannot decode): the caller then asks helm, whose message says
    /// what is wrong in helm's words.
    pub fn read_stored(kube: &KubeClient, release: &str) -> Option<Result<Release, ReadError>> {
        let documents = kube.release_documents::<StoredRelease>(release).ok()?;
        if documents.is_empty() {
            return Some(Err(ReadError::not_found(release, kube.namespace())));
        }
        Some(Release::from_stored(documents.into_iter().map(|(_, d)| d).collect()))
    }

    /// The release as `helm status`, `helm history` and `helm get metadata` print it, from
    /// its stored revisions (oldest first, at least one): the newest is the release, as
    /// helm's `Last` takes it.
    fn from_stored(mut documents: Vec<StoredRelease>) -> Result<Release, ReadError> {
        let latest = documents.pop().expect("one revision at least");
        let chart = latest.chart.as_ref().map(|c| c.metadata.clone()).unwrap_or_default();
        let version = reported_version(&latest.name, &chart.version)?;
        let revision = |d: &StoredRelease| Revision {
            revision: d.version,
            status: d.info.status,
            // As `helm history` shows it, `<name>-<version>`, read with the current name.
            version: d
                .chart
                .as_ref()
                .filter(|c| c.metadata.name == chart.name)
                .and_then(|c| ChartVersion::parse(&c.metadata.version).ok()),
            description: d.info.description.clone(),
        };
        let mut history: Vec<Revision> = documents.iter().map(revision).collect();
        history.push(revision(&latest));
        let current_values = recorded_values(latest.config);
        let mut stored_values: BTreeMap<u64, serde_json::Value> =
            documents.into_iter().map(|d| (d.version, recorded_values(d.config))).collect();
        stored_values.insert(latest.version, current_values.clone());
        Ok(Release {
            history,
            name: latest.name,
            namespace: latest.namespace,
            chart_name: chart.name,
            version,
            app_version: chart.app_version.filter(|a| !a.is_empty()),
            revision: latest.version,
            status: latest.info.status,
            description: latest.info.description,
            user_values: current_values,
            manifest: latest.manifest,
            stored_values: Some(stored_values),
        })
    }

    /// The newest revision before the current one that is `deployed` or `superseded`:
    /// the rule helm's own `--atomic` uses, and never a failed revision (a bare
    /// `helm rollback` picks revision − 1 whatever its status).
    pub fn last_good_revision(&self) -> Option<&Revision> {
        self.history
            .iter()
            .rev()
            .filter(|r| r.revision < self.revision)
            .find(|r| matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded))
    }

    /// The version to leave when going back: for a failed release, the newest of the last
    /// good revision and every revision after it, failed ones included, since each of those
    /// may have run its chart's migrations (pre-upgrade hooks). After a failed 1.3.2 → 1.4.1
    /// upgrade and then a failed redeploy of 1.3.2, the database may hold 1.4.1's schema:
    /// the way back is 1.4.1 → 1.3.2 with its down-migration, not "nothing to do". A
    /// release in any other state is simply at its version.
    pub fn leaving_version(&self) -> ChartVersion {
        // A pending revision is one helm started and did not finish: its hooks may have
        // run too.
        if self.status != ReleaseStatus::Failed && !self.status.is_pending() {
            return self.version.clone();
        }
        let since = self.last_good_revision().map_or(0, |good| good.revision);
        self.history
            .iter()
            .filter(|r| r.revision >= since)
            .filter_map(|r| r.version.clone())
            .chain(std::iter::once(self.version.clone()))
            .max()
            .expect("at least the current version")
    }

    /// Versions deployed successfully, oldest first.
    pub fn deployed_versions(&self) -> Vec<ChartVersion> {
        self.history
            .iter()
            .filter(|r| matches!(r.status, ReleaseStatus::Deployed | ReleaseStatus::Superseded))
            .filter_map(|r| r.version.clone())
            .collect()
    }
}

/// `bsr-1.2.0` → 1.2.0, knowing the chart's name. Splitting on the last `-` breaks on
/// pre-releases (`bsr-1.5.0-rc.1`), and on the first breaks on `ingress-nginx-4.1.0`.
impl ReadError {
    fn not_found(release: &str, namespace: &str) -> ReadError {
        ReadError::NotFound { release: release.to_string(), namespace: namespace.to_string() }
    }
}

/// The chart version a release reports, or why this tool cannot order it.
fn reported_version(release: &str, version: &str) -> Result<ChartVersion, ReadError> {
    ChartVersion::parse(version).map_err(|e| ReadError::BadVersion {
        release: release.to_string(),
        version: version.to_string(),
        reason: e.reason,
    })
}

pub fn version_from_chart_field(field: &str, chart_name: &str) -> Option<ChartVersion> {
    field.strip_prefix(chart_name).and_then(|rest| rest.strip_prefix('-')).and_then(|v| ChartVersion::parse(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_field_versions_survive_dashes() {
        assert_eq!(version_from_chart_field("bsr-1.2.0", "bsr").unwrap().to_string(), "1.2.0");
        assert_eq!(version_from_chart_field("bsr-1.5.0-rc.1", "bsr").unwrap().to_string(), "1.5.0-rc.1");
        assert_eq!(version_from_chart_field("ingress-nginx-4.1.0", "ingress-nginx").unwrap().to_string(), "4.1.0");
        assert!(version_from_chart_field("MISSING", "bsr").is_none());
    }

    #[test]
    fn parses_helm_history_json() {
        // As helm 3.19.0 and 4.1.4 print it.
        let json = r#"[{"revision":1,"updated":"2026-01-01T10:00:00Z","status":"superseded","chart":"bsr-1.1.0","app_version":"2.0.0","description":"Install complete"},
 {"revision":3,"updated":"2026-01-03T10:00:00Z","status":"failed","chart":"bsr-1.3.0","app_version":"2.2.0","description":"Upgrade \"bsr\" failed: context deadline exceeded"},
 {"revision":4,"updated":"2026-01-03T10:05:00Z","status":"pending-upgrade","chart":"bsr-1.2.0","app_version":"2.1.0","description":"Rollback to 2"}]"#;
        let history: Vec<HistoryEntry> = serde_json::from_str(json).unwrap();
        assert_eq!(history[1].status, ReleaseStatus::Failed);
        assert!(history[2].status.is_pending());
    }

    #[test]
    fn a_debug_print_shows_no_value_nor_the_manifest() {
        let mut release = release_with(ReleaseStatus::Deployed, &[(1, ReleaseStatus::Deployed, "1.0.4")]);
        release.user_values = serde_json::json!({"postgres": {"password": "hunter2"}, "replicaCount": 3});
        release.manifest = "kind: Secret\ndata:\n  password: aHVudGVyMg==\n".into();
        release.stored_values = Some([(1, release.user_values.clone())].into());
        let shown = format!("{release:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("aHVudGVyMg=="), "{shown}");
        assert!(shown.contains("\"postgres.password\"") && shown.contains("\"replicaCount\""), "{shown}");
    }

    fn release_with(status: ReleaseStatus, history: &[(u64, ReleaseStatus, &str)]) -> Release {
        let last = history.last().unwrap();
        Release {
            name: "bsr".into(),
            namespace: "bsr".into(),
            chart_name: "bsr".into(),
            version: ChartVersion::parse(last.2).unwrap(),
            app_version: None,
            revision: last.0,
            status,
            description: String::new(),
            history: history
                .iter()
                .map(|(revision, status, version)| Revision {
                    revision: *revision,
                    status: *status,
                    version: Some(ChartVersion::parse(version).unwrap()),
                    description: String::new(),
                })
                .collect(),
            user_values: serde_json::json!({}),
            manifest: String::new(),
            stored_values: None,
        }
    }

    #[test]
    fn a_failed_release_is_left_from_the_newest_version_tried_since_the_last_good_one() {
        use ReleaseStatus::{Deployed, Failed, Superseded};
        let v = |s: &str| ChartVersion::parse(s).unwrap();
        // A failed upgrade 1.1.9 → 1.2.6: leave 1.2.6.
        let r = release_with(Failed, &[(1, Superseded, "1.1.9"), (2, Failed, "1.2.6")]);
        assert_eq!(r.leaving_version(), v("1.2.6"));
        // A failed rollback 1.2.6 → 1.1.9: still leaving 1.2.6.
        let r = release_with(Failed, &[(1, Superseded, "1.1.9"), (2, Superseded, "1.2.6"), (3, Failed, "1.1.9")]);
        assert_eq!(r.leaving_version(), v("1.2.6"));
        // A failed upgrade to 1.4.1, then a failed way back to 1.3.2: 1.4.1 may have migrated.
        let r = release_with(Failed, &[(4, Superseded, "1.3.2"), (5, Failed, "1.4.1"), (6, Failed, "1.3.2")]);
        assert_eq!(r.leaving_version(), v("1.4.1"));
        // Revisions before the last good one do not count: 2.0.0 failed long ago and was
        // brought back by 3 (its way back ran then).
        let r = release_with(Failed, &[(2, Failed, "2.0.0"), (3, Superseded, "1.3.2"), (4, Failed, "1.3.2")]);
        assert_eq!(r.leaving_version(), v("1.3.2"));
        // A deployed release is at its version.
        let r = release_with(Deployed, &[(1, Superseded, "1.4.1"), (2, Deployed, "1.3.2")]);
        assert_eq!(r.leaving_version(), v("1.3.2"));
    }

    #[test]
    fn a_release_read_from_storage_keeps_every_revisions_values() {
        let document = |version: u64, status: &str, config: Option<serde_json::Value>| {
            let mut d = serde_json::json!({
                "name": "bsr", "namespace": "bsr", "version": version,
                "info": {"status": status, "description": "Upgrade complete"},
                "chart": {"metadata": {"name": "bsr", "version": "1.2.0"}},
                "manifest": "",
            });
            if let Some(config) = config {
                d["config"] = config;
            }
            serde_json::from_value::<StoredRelease>(d).unwrap()
        };
        let documents = vec![
            document(3, "superseded", None),
            document(4, "superseded", Some(serde_json::Value::Null)),
            document(5, "deployed", Some(serde_json::json!({"replicas": 2}))),
        ];
        let release = Release::from_stored(documents).unwrap();
        assert_eq!(release.user_values, serde_json::json!({"replicas": 2}));
        let stored = release.stored_values.expect("read from storage");
        // Absent and `null` are both `{}`, as `helm get values --revision N` reads them.
        assert_eq!(
            stored,
            BTreeMap::from([
                (3, serde_json::json!({})),
                (4, serde_json::json!({})),
                (5, serde_json::json!({"replicas": 2}))
            ])
        );
    }

    #[test]
    fn parses_helm_metadata_json() {
        let json = r#"{"name":"bsr","chart":"bsr","version":"1.2.0","appVersion":"2.1.0","namespace":"foo","revision":4,"status":"deployed","deployedAt":"2026-01-03T10:05:00Z"}"#;
        let m: Metadata = serde_json::from_str(json).unwrap();
        assert_eq!((m.chart.as_str(), m.version.as_str(), m.revision), ("bsr", "1.2.0", 4));
        assert_eq!(m.status, ReleaseStatus::Deployed);
    }
}
