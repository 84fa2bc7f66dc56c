//! The ledger: one small record per release that outlives runs.
//!
//! helm keeps only `--history-max` revisions (10 by default), so "the newest version ever
//! deployed", which bounds every downgrade window, cannot come from `helm history` alone.
//! The ledger keeps it, with the chart reference and the policy last used (its text and
//! digest), each run and each hop with its outcome, the snapshots taken, and the plan in
//! progress. The same record is the lock that stops two runs on one release and the
//! journal `--resume` continues from.
//!
//! It lives in a ConfigMap `helm-safe-upgrade.<release>` beside the release, so every
//! operator and CI runner sees the same record ([`configmap`]); where the cluster lets
//! nobody create it, in a local file ([`file`], chosen by [`open`]). Both stores write
//! with optimistic concurrency, so of two writers only one wins: that is what makes the
//! lock a lock ([`lock`]).
//!
//! The record is readable by everyone who can read ConfigMaps in the namespace, and
//! writable by everyone who can write them. So it never holds a value the operator
//! passed (only digests, and a redacted command shape), and everything read back from it
//! is treated as untrusted: shown in the plan, sanitised before printing, and values
//! files it names are read only from the tool's own private backup folder, checked
//! against their digests ([`crate::run::values`]).
//!
//! This module owns the record. It decides nothing about paths or hops (the planner and
//! the executor do), and talks to the cluster only through the API client
//! ([`crate::kube`]); it spawns nothing.

pub mod configmap;
pub mod file;
pub mod lock;
pub mod open;
pub mod store;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::run::holder::Process;
use crate::version::ChartVersion;

pub use configmap::{ConfigMapStore, LedgerConfigMap, configmap_name};
pub use file::{FileStore, path_component, state_root};
pub use lock::{Held, Takeover};
pub use open::{OpenedStore, open_store, open_store_at};
pub use store::{LedgerStore, Revision, Stored};

/// The record format this build writes. A newer one is refused rather than half-read and
/// rewritten, which would drop the fields this build does not know. Schema 1 (no policy
/// text, no runs, an untyped plan) is read and upgraded on the next write.
pub const SCHEMA: u32 = 2;

/// Hop records kept: enough to explain the recent past.
pub const MAX_HOPS: usize = 100;
/// Snapshot records kept.
pub const MAX_SNAPSHOTS: usize = 100;
/// Run records kept.
pub const MAX_RUNS: usize = 100;
/// The longest message kept in a hop or run record (helm's error output can be long).
pub const MAX_MESSAGE_BYTES: usize = 2048;
/// The longest policy text kept. A longer policy is recorded by digest only, and a run
/// that must use it again asks for the file.
pub const MAX_POLICY_TEXT_BYTES: usize = 256 * 1024;
/// The whole record is kept below this, well under the 1 MiB a ConfigMap may hold (and
/// the API server's request limit), by dropping the oldest runs, hops and snapshots
/// first and the policy text last.
pub const MAX_RECORD_BYTES: usize = 768 * 1024;

/// The label every ledger ConfigMap carries, so `kubectl get cm -l` finds them all.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "helm-safe-upgrade";
/// The label naming the release a ledger ConfigMap belongs to.
pub const RELEASE_LABEL: &str = "helm-safe-upgrade/release";
/// The ConfigMap key holding the JSON.
pub const DATA_KEY: &str = "ledger";

/// Everything this tool remembers about one release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub schema: u32,
    pub release: String,
    pub namespace: String,
    /// The newest chart version helm ever ran for this release through this tool (or seen
    /// in its history): deployed, or failed after helm started it, since its hooks may
    /// have migrated the database. Never a version helm did not get to.
    pub newest_ever: Option<ChartVersion>,
    /// The chart reference last used (`repo/name`, `oci://…`, a directory).
    pub chart: Option<String>,
    /// The name of the policy last used (kept for people reading the record).
    pub policy: Option<String>,
    /// The policy last used: where it came from, its digest and (up to a size) its text.
    #[serde(default)]
    pub policy_record: Option<PolicyRecord>,
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    #[serde(default)]
    pub hops: Vec<HopRecord>,
    #[serde(default)]
    pub snapshots: Vec<SnapshotRecord>,
    pub in_progress: Option<InProgress>,
    pub lock: Option<Lock>,
    /// Set when older records were dropped to keep the record small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed: Option<String>,
}

/// The policy a run used, so the next run can use exactly the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub name: String,
    pub origin: crate::policy::Origin,
    pub digest: String,
    /// The YAML, when at most [`MAX_POLICY_TEXT_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One run of the tool on the release: the release's story, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    /// `user@host pid N`.
    pub holder: String,
    /// The command line with every value redacted.
    pub command: String,
    /// `upgrade` or `rollback`.
    pub direction: String,
    pub from: ChartVersion,
    pub to: ChartVersion,
    /// `completed`, `stopped`, `recovered`, `failed`, `declined`, `interrupted` (Ctrl-C at the
    /// confirmation); None while it runs.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Where the release stood when the run ended.
    #[serde(default)]
    pub at: Option<ChartVersion>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HopRecord {
    pub from: ChartVersion,
    pub to: ChartVersion,
    /// The hop's kind as the plan's JSON names it (`minor`, `patch-downgrade`, …).
    pub kind: String,
    /// RFC 3339, UTC, seconds.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: HopOutcome,
    pub message: Option<String>,
}

/// How a hop ended; `running` on record after the run is gone means it crashed mid-hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HopOutcome {
    Running,
    Succeeded,
    Failed,
    RolledBack,
    Stopped,
}

impl HopOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            HopOutcome::Running => "running",
            HopOutcome::Succeeded => "succeeded",
            HopOutcome::Failed => "failed",
            HopOutcome::RolledBack => "rolled-back",
            HopOutcome::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for HopOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The version deployed when the snapshot was taken: a restore brings the release
    /// back to this version, whatever the walk did after.
    pub version: ChartVersion,
    pub taken_at: String,
    /// `command`, `confirmed by the operator` or `--snapshot-taken`.
    pub how: String,
}

/// The plan a run is walking, so `--resume` can continue after a crash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InProgress {
    /// The plan, exactly as printed by `-o json`.
    pub plan: Plan,
    /// The index of the first hop not yet finished.
    pub next_hop: usize,
    /// The step within `next_hop` about to change something, if the hop has started.
    pub step: Option<usize>,
    pub started_at: String,
    /// Where the values this run deploys are kept (never the values themselves).
    #[serde(default)]
    pub values: Option<ValuesRecord>,
}

/// The private backup holding a run's values, and the digests that prove a later run
/// reads the same files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValuesRecord {
    /// The host whose state directory holds the backup.
    pub host: String,
    /// The backup folder's name, under the tool's own backups folder. A name, not a
    /// path: a record edited to point elsewhere cannot make a run read another file.
    pub backup: String,
    /// `name → sha256:…` of every file the run deploys from (`values.json`, the operator's
    /// `-f` copies, `sets.json`).
    pub files: Vec<FileDigest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// `user@host pid N`: enough for an operator to find the run.
    pub holder: String,
    pub since: String,
    /// The command line that took it, every value redacted: its shape, never a secret.
    pub command: String,
    /// What the run is doing: "upgrade 1.0.4 → 1.3.0 (3 hops)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The holder's host, pid and start identity, to tell whether it is still alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
}

impl Lock {
    /// The holder's process, from the record or (older records) its holder string.
    pub fn holder_process(&self) -> Option<Process> {
        self.process.clone().or_else(|| crate::run::holder::parse_holder(&self.holder))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{0}")]
    Locked(Box<Locked>),
    #[error(
        "the ledger in {location} was changed by someone else while this run held it \
         (another run with --force-unlock, or the record was edited or deleted): this run no longer holds the lock\n\
         hint: check who runs on this release now before trying again"
    )]
    LockLost { location: String },
    /// Another writer got there first. Stores return it; [`lock`] turns it into `Locked`
    /// or `LockLost`.
    #[error("the ledger in {location} was changed by another writer at the same time\nhint: run the command again")]
    Conflict { location: String },
    #[error(
        "the cluster forbids this user to {verb} the ledger ConfigMap {name} in namespace {namespace}:\n{stderr}\n\
         hint: grant get, create and update on configmaps in namespace {namespace} (the ledger is shared \
         by every operator and CI runner only there), or pass --local-ledger to keep it on this machine only"
    )]
    Forbidden { verb: String, name: String, namespace: String, stderr: String },
    #[error(
        "{why}, so whether another run holds the lock of {release} cannot be checked\n\
         hint: {hint}"
    )]
    Unverifiable { release: String, why: String, hint: String },
    #[error(
        "the ledger in {location} was written by a newer helm-safe-upgrade (schema {found}, this one reads up to {SCHEMA})\n\
         hint: upgrade helm-safe-upgrade"
    )]
    NewerSchema { location: String, found: u64 },
    #[error(
        "the ledger in {location} cannot be read: {error}\n\
         hint: look at it{inspect}; deleting it starts a new record, but forgets the newest version ever \
         deployed, which bounds how far back a rollback may go"
    )]
    Corrupt { location: String, error: String, inspect: String },
    #[error(
        "the ConfigMap {name} in namespace {namespace} exists but was not made by helm-safe-upgrade \
         (label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} missing)\n\
         hint: rename or remove that ConfigMap; this tool will not overwrite it"
    )]
    NotOurs { name: String, namespace: String },
    #[error("{action} {path}: {source}\nhint: {hint}")]
    Io { action: String, path: String, source: std::io::Error, hint: String },
    /// A call of the API client failed or was refused otherwise than the store's contract
    /// names (unreachable, timed out, a missing namespace, …); says what it was doing.
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
    #[error("cannot encode the ledger as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("no hop is running, so none can end (internal: the walk recorded an end without a start)")]
    NoHopRunning,
}

/// Who holds the lock a run could not take, as printed (every field sanitised).
#[derive(Debug, thiserror::Error)]
#[error("release {release} is locked by {holder} since {since}{plan}, running: {command}\nhint: {hint}")]
pub struct Locked {
    pub release: String,
    pub holder: String,
    pub since: String,
    pub command: String,
    /// ` (upgrade 1.0.4 → 1.3.0 (3 hops))`, or empty.
    pub plan: String,
    pub hint: String,
}

/// Now, as the ledger spells time: RFC 3339, UTC, whole seconds.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn message(text: Option<String>) -> Option<String> {
    text.map(|t| crate::text::truncated(&t, MAX_MESSAGE_BYTES).into_owned())
}

impl Ledger {
    /// A fresh record: nothing deployed by this tool yet, no lock.
    pub fn new(release: &str, namespace: &str) -> Ledger {
        Ledger {
            schema: SCHEMA,
            release: release.to_string(),
            namespace: namespace.to_string(),
            newest_ever: None,
            chart: None,
            policy: None,
            policy_record: None,
            runs: Vec::new(),
            hops: Vec::new(),
            snapshots: Vec::new(),
            in_progress: None,
            lock: None,
            trimmed: None,
        }
    }

    /// Read a stored record, refusing one written by a newer schema before serde could
    /// silently drop what it does not know.
    pub fn from_json(text: &str, location: &str, inspect: &str) -> Result<Ledger, LedgerError> {
        let corrupt = |error: String| LedgerError::Corrupt {
            location: location.to_string(),
            error,
            inspect: inspect.to_string(),
        };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        match value.get("schema").and_then(serde_json::Value::as_u64) {
            Some(found) if found > u64::from(SCHEMA) => {
                return Err(LedgerError::NewerSchema { location: location.to_string(), found });
            }
            Some(1) => upgrade_schema_1(&mut value),
            Some(_) => {}
            None => return Err(corrupt("no \"schema\" field".to_string())),
        }
        serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
    }

    /// The record as stored: pretty JSON (people read it with `kubectl get cm -o jsonpath`
    /// when something went wrong), no larger than [`MAX_RECORD_BYTES`].
    pub fn to_json(&self) -> Result<String, LedgerError> {
        let text = serde_json::to_string_pretty(self)?;
        if text.len() <= MAX_RECORD_BYTES {
            return Ok(text);
        }
        let mut smaller = self.clone();
        smaller.shrink_to(MAX_RECORD_BYTES)?;
        Ok(serde_json::to_string_pretty(&smaller)?)
    }

    /// Drop the oldest runs, hops and snapshots, then the policy text, until the record
    /// fits in `limit` bytes; say what was dropped in `trimmed`.
    fn shrink_to(&mut self, limit: usize) -> Result<(), LedgerError> {
        let mut dropped = (0usize, 0usize, 0usize);
        while serde_json::to_string_pretty(self)?.len() > limit {
            if self.runs.len() > 1 {
                self.runs.remove(0);
                dropped.0 += 1;
            } else if self.hops.len() > 1 {
                self.hops.remove(0);
                dropped.1 += 1;
            } else if self.snapshots.len() > 1 {
                self.snapshots.remove(0);
                dropped.2 += 1;
            } else if let Some(text) = self.policy_record.as_mut().and_then(|p| p.text.take()) {
                drop(text);
            } else {
                break;
            }
            self.trimmed = Some(format!(
                "older records were dropped to keep the ledger under {} KiB ({} runs, {} hops, {} snapshots)",
                limit / 1024,
                dropped.0,
                dropped.1,
                dropped.2
            ));
        }
        Ok(())
    }

    pub fn newest_ever(&self) -> Option<&ChartVersion> {
        self.newest_ever.as_ref()
    }

    /// helm ran `version` for this release (it is deployed, or failed after helm started
    /// it): raise `newest_ever` if it is newer. Returns whether the record changed.
    pub fn note_deployed(&mut self, version: &ChartVersion) -> bool {
        if self.newest_ever.as_ref().is_some_and(|n| n >= version) {
            return false;
        }
        self.newest_ever = Some(version.clone());
        true
    }

    pub fn record_hop_start(&mut self, from: &ChartVersion, to: &ChartVersion, kind: &str) {
        self.hops.push(HopRecord {
            from: from.clone(),
            to: to.clone(),
            kind: kind.to_string(),
            started_at: now(),
            ended_at: None,
            outcome: HopOutcome::Running,
            message: None,
        });
        trim_front(&mut self.hops, MAX_HOPS);
    }

    /// End the latest running hop.
    pub fn record_hop_end(&mut self, outcome: HopOutcome, text: Option<String>) -> Result<(), LedgerError> {
        let hop =
            self.hops.iter_mut().rev().find(|h| h.outcome == HopOutcome::Running).ok_or(LedgerError::NoHopRunning)?;
        hop.outcome = outcome;
        hop.ended_at = Some(now());
        hop.message = message(text);
        Ok(())
    }

    pub fn record_snapshot(&mut self, version: &ChartVersion, how: &str) {
        self.snapshots.push(SnapshotRecord { version: version.clone(), taken_at: now(), how: how.to_string() });
        trim_front(&mut self.snapshots, MAX_SNAPSHOTS);
    }

    pub fn latest_snapshot(&self) -> Option<&SnapshotRecord> {
        self.snapshots.last()
    }

    pub fn record_run_start(&mut self, run: RunRecord) {
        self.runs.push(run);
        trim_front(&mut self.runs, MAX_RUNS);
    }

    /// End the latest run that has not ended.
    pub fn record_run_end(&mut self, outcome: &str, at: Option<ChartVersion>, text: Option<String>) {
        if let Some(run) = self.runs.iter_mut().rev().find(|r| r.ended_at.is_none()) {
            run.ended_at = Some(now());
            run.outcome = Some(outcome.to_string());
            run.at = at;
            run.message = message(text);
        }
    }

    /// Record where the walk is. `started_at` stays that of the first call for the same
    /// plan, so it tells when the whole run began, not the latest hop.
    pub fn set_in_progress(
        &mut self,
        mut plan: Plan,
        next_hop: usize,
        step: Option<usize>,
        values: Option<ValuesRecord>,
    ) {
        // The summaries of --diff are kept; a full diff may not fit a ConfigMap (1 MiB).
        for changes in plan.hops.iter_mut().filter_map(|h| h.check.as_mut()).filter_map(|c| c.changes.as_mut()) {
            changes.unified = None;
        }
        let started_at = match &self.in_progress {
            Some(p) if p.plan == plan => p.started_at.clone(),
            _ => now(),
        };
        self.in_progress = Some(InProgress { plan, next_hop, step, started_at, values });
    }

    pub fn clear_in_progress(&mut self) {
        self.in_progress = None;
    }
}

/// Schema 1 kept the plan in progress as loose JSON with a `values_backup` path beside
/// it, and had no policy text or run records. Its plan reads as a typed plan; the path is
/// dropped (a path from the record is never trusted: see [`ValuesRecord`]), so a resume
/// of such a run asks for its values.
fn upgrade_schema_1(value: &mut serde_json::Value) {
    value["schema"] = serde_json::Value::from(SCHEMA);
    if let Some(plan) = value.pointer_mut("/in_progress/plan").and_then(|p| p.as_object_mut()) {
        plan.remove("values_backup");
    }
}

fn trim_front<T>(list: &mut Vec<T>, keep: usize) {
    if list.len() > keep {
        list.drain(..list.len() - keep);
    }
}

#[cfg(test)]
mod tests;
