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
pub(crate) use file::{private_file, private_folder};
pub use lock::{Held, Takeover};
pub use open::{OpenedStore, open_for_showing, open_store, open_store_at};
pub use store::{ForShowing, LedgerStore, Revision, Stored};

/// The record format this build writes. A newer one is refused rather than half-read and
/// rewritten, which would drop the fields this build does not know (`--history`, which
/// writes nothing, reads it as far as it understands: [`Ledger::from_json_for_reading`]).
/// Schema 1 (no policy text, no runs, an untyped plan) and schema 2 (no run ids, steps or
/// hop timings) are read and upgraded on the next write.
pub const SCHEMA: u32 = 3;

/// Hop records kept: enough to explain the recent past.
pub const MAX_HOPS: usize = 100;
/// Snapshot records kept.
pub const MAX_SNAPSHOTS: usize = 100;
/// Run records kept.
pub const MAX_RUNS: usize = 100;
/// Step records kept per run (a run of many hops, each with a way back, stays well under).
pub const MAX_STEPS_PER_RUN: usize = 200;
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
    /// How many runs, hops and snapshots were ever dropped (by count or by size), so the
    /// history can say that older entries are gone.
    #[serde(default, skip_serializing_if = "Dropped::is_nothing")]
    pub dropped: Dropped,
    /// Runs ever recorded: the next run's id (ids stay unique when old runs are dropped).
    #[serde(default)]
    pub runs_recorded: u64,
}

/// Records dropped over the ledger's life to keep it small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub hops: u64,
    #[serde(default)]
    pub snapshots: u64,
}

impl Dropped {
    pub fn is_nothing(&self) -> bool {
        *self == Dropped::default()
    }
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
    /// Unique within the ledger (set by [`Ledger::record_run_start`]); 0 in records
    /// written before schema 3.
    #[serde(default)]
    pub id: u64,
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
    /// Every step the run took, in order, hops and ways back alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
}

/// One step a run took: what the screen showed, how it ended, how long it took. Written
/// from the plan's own words (policy text and versions), never the operator's values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The hop it belongs to, 1-based as the screen numbers them; None: the preflight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<usize>,
    /// The plan's action (`deploy`, `verify`, `run`, …).
    pub action: String,
    /// "deploy 1.2.6", "run bufd migratedownto".
    pub detail: String,
    /// `ok`, `failed`, `declined`, `not started`.
    pub outcome: String,
    pub duration_ms: u64,
    /// The step waited for the operator (a confirmation): its time is theirs, not the
    /// release's, and estimates leave it out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waited_for_operator: bool,
    /// A step of the way back of a failed or rolled back hop (`hop` is that hop), not of
    /// the hop itself: the history shows them apart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub way_back: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HopRecord {
    /// The run that walked it ([`RunRecord::id`]); None before schema 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// Its place in that run's plan, 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub from: ChartVersion,
    pub to: ChartVersion,
    /// The hop's kind as the plan's JSON names it (`minor`, `patch-downgrade`, …).
    pub kind: String,
    /// RFC 3339, UTC, seconds.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: HopOutcome,
    pub message: Option<String>,
    /// The plan's procedure for it (`rolling`, `maintenance-jump`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
    /// How long its own steps took, without the time spent waiting for the operator: what
    /// estimates learn from (the pause after a hop is not part of it either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_ms: Option<u64>,
    /// For a procedure with downtime: from its first deploy to its end, without waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
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
    /// The run that took it ([`RunRecord::id`]); None before schema 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
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
            dropped: Dropped::default(),
            runs_recorded: 0,
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
        let schema = match value.get("schema") {
            None => return Err(corrupt("no \"schema\" field".to_string())),
            Some(found) => found.as_u64().ok_or_else(|| {
                corrupt(format!("\"schema\" is {}, not a whole number", crate::text::truncated(&found.to_string(), 64)))
            })?,
        };
        if schema > u64::from(SCHEMA) {
            return Err(LedgerError::NewerSchema { location: location.to_string(), found: schema });
        }
        if schema == 1 {
            upgrade_schema_1(&mut value);
            return serde_json::from_value(value).map_err(|e| corrupt(e.to_string()));
        }
        // Read from the text, not the parsed value: serde then says where the field it
        // cannot read stands ("at line 5 column 17"), in the very text the hint's kubectl
        // command prints. Without it, "invalid type: integer `12`, expected a string"
        // leaves a person to guess which of the record's fields was edited.
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))
    }

    /// Read a stored record only to show it (`--history`): a record of a newer schema is
    /// read as far as this build understands it (fields it does not know are left out,
    /// entries it cannot read are skipped), and the second value says so. Never written
    /// back: that would drop what this build does not know.
    pub fn from_json_for_reading(
        text: &str,
        location: &str,
        inspect: &str,
    ) -> Result<(Ledger, Option<String>), LedgerError> {
        match Ledger::from_json(text, location, inspect) {
            Err(LedgerError::NewerSchema { found, .. }) => {
                let value: serde_json::Value = serde_json::from_str(text).map_err(|e| LedgerError::Corrupt {
                    location: location.to_string(),
                    error: e.to_string(),
                    inspect: inspect.to_string(),
                })?;
                let (ledger, skipped) = lenient(value);
                let mut note = format!(
                    "the ledger in {location} was written by a newer helm-safe-upgrade (schema {found}; this one reads up to {SCHEMA}): shown as far as this version understands it"
                );
                if skipped > 0 {
                    note.push_str(&format!(" ({skipped} entries it cannot read are left out)"));
                }
                Ok((ledger, Some(note)))
            }
            other => other.map(|l| (l, None)),
        }
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

    /// Trim the record in place to what [`Ledger::to_json`] stores. A run keeps the record
    /// it wrote and reads it back after a write that timed out to learn whether it landed
    /// ([`Held::save`]): compared with an untrimmed copy, a landed write of a record over
    /// the limit read as someone else's, and the run stopped with "lost the lock" while it
    /// held it.
    pub fn fit(&mut self) -> Result<(), LedgerError> {
        self.shrink_to(MAX_RECORD_BYTES)
    }

    /// Drop the oldest runs, hops and snapshots, then the policy text, until the record
    /// fits in `limit` bytes; say what was dropped in `trimmed`.
    ///
    /// The fewest entries that must go are found by halving (a dozen serialisations),
    /// not by dropping one entry at a time and serialising the whole record again after
    /// each: a record edited by hand to thousands of small entries took minutes that way,
    /// before the run had even taken its lock.
    fn shrink_to(&mut self, limit: usize) -> Result<(), LedgerError> {
        let fits = |l: &Ledger| -> Result<bool, LedgerError> { Ok(serde_json::to_string_pretty(l)?.len() <= limit) };
        if fits(self)? {
            return Ok(());
        }
        // Oldest first, one of each list always kept: runs, then hops, then snapshots.
        let droppable = [self.runs.len(), self.hops.len(), self.snapshots.len()].map(|n| n.saturating_sub(1));
        let split = |mut k: usize| {
            droppable.map(|most| {
                let n = k.min(most);
                k -= n;
                n
            })
        };
        // The record with the `k` oldest entries dropped, saying so: what is measured is
        // what is written, `trimmed` and `dropped` included.
        let dropping = |k: usize| {
            let [runs, hops, snapshots] = split(k);
            let mut smaller = self.clone();
            smaller.runs.drain(..runs);
            smaller.hops.drain(..hops);
            smaller.snapshots.drain(..snapshots);
            smaller.dropped.runs = smaller.dropped.runs.saturating_add(runs as u64);
            smaller.dropped.hops = smaller.dropped.hops.saturating_add(hops as u64);
            smaller.dropped.snapshots = smaller.dropped.snapshots.saturating_add(snapshots as u64);
            smaller.trimmed = Some(format!(
                "older records were dropped to keep the ledger under {} KiB ({runs} runs, {hops} hops, {snapshots} snapshots)",
                limit / 1024
            ));
            smaller
        };
        let (mut fewest, mut most) = (0, droppable.iter().sum::<usize>());
        if fits(&dropping(most))? {
            // Dropping `most` fits and `fewest` (none) does not: halve the gap between them.
            while most - fewest > 1 {
                let middle = fewest + (most - fewest) / 2;
                if fits(&dropping(middle))? { most = middle } else { fewest = middle }
            }
        }
        *self = dropping(most);
        if !fits(self)?
            && let Some(policy) = self.policy_record.as_mut()
        {
            policy.text = None;
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

    /// Hop `index` (0-based) of the plan of the run under way starts.
    pub fn record_hop_start(&mut self, hop: &crate::plan::Hop, index: usize) {
        self.hops.push(HopRecord {
            run: self.current_run_id(),
            index: Some(index + 1),
            from: hop.from.clone(),
            to: hop.to.clone(),
            kind: hop.kind.as_str().to_string(),
            started_at: now(),
            ended_at: None,
            outcome: HopOutcome::Running,
            message: None,
            procedure: Some(hop.procedure.clone()),
            work_ms: None,
            downtime_ms: None,
        });
        self.dropped.hops = self.dropped.hops.saturating_add(trim_front(&mut self.hops, MAX_HOPS));
    }

    /// End the latest running hop. Its timings come from the steps the run recorded for
    /// it; `downtime` says whether its procedure has downtime.
    pub fn record_hop_end(
        &mut self,
        outcome: HopOutcome,
        text: Option<String>,
        downtime: bool,
    ) -> Result<(), LedgerError> {
        let run = self.current_run_id();
        let position =
            self.hops.iter().rposition(|h| h.outcome == HopOutcome::Running).ok_or(LedgerError::NoHopRunning)?;
        let index = self.hops[position].index;
        let steps: Vec<&StepRecord> = self
            .runs
            .iter()
            .rev()
            .find(|r| Some(r.id) == run && r.ended_at.is_none())
            .map(|r| r.steps.iter().filter(|s| s.hop.is_some() && s.hop == index).collect())
            .unwrap_or_default();
        // Saturating: the steps are read back from a record anyone may edit.
        let work = |steps: &[&StepRecord]| {
            steps.iter().filter(|s| !s.waited_for_operator).fold(0u64, |sum, s| sum.saturating_add(s.duration_ms))
        };
        let work_ms = (!steps.is_empty()).then(|| work(&steps));
        let downtime_ms = steps
            .iter()
            .position(|s| s.action == "deploy")
            .filter(|_| downtime)
            .map(|first_deploy| work(&steps[first_deploy..]));
        let hop = &mut self.hops[position];
        hop.outcome = outcome;
        hop.ended_at = Some(now());
        hop.message = message(text);
        hop.work_ms = work_ms;
        hop.downtime_ms = downtime_ms;
        Ok(())
    }

    /// A step of the run under way ended.
    pub fn record_step(&mut self, step: StepRecord) {
        if let Some(run) = self.runs.iter_mut().rev().find(|r| r.ended_at.is_none())
            && run.steps.len() < MAX_STEPS_PER_RUN
        {
            run.steps.push(step);
        }
    }

    pub fn record_snapshot(&mut self, version: &ChartVersion, how: &str) {
        let run = self.current_run_id();
        self.snapshots.push(SnapshotRecord { run, version: version.clone(), taken_at: now(), how: how.to_string() });
        self.dropped.snapshots = self.dropped.snapshots.saturating_add(trim_front(&mut self.snapshots, MAX_SNAPSHOTS));
    }

    /// The id of the run under way (the latest that has not ended).
    fn current_run_id(&self) -> Option<u64> {
        self.runs.iter().rev().find(|r| r.ended_at.is_none()).map(|r| r.id)
    }

    pub fn latest_snapshot(&self) -> Option<&SnapshotRecord> {
        self.snapshots.last()
    }

    /// A run starts; it gets the ledger's next run id.
    pub fn record_run_start(&mut self, mut run: RunRecord) {
        // Records older than schema 3 have no ids (0): start after them.
        // Saturating: the count is read back from a record anyone may edit, and one set to
        // u64::MAX made the next run panic ("attempt to add with overflow") before it had
        // taken its lock, on every run until the record was fixed by hand.
        self.runs_recorded = self.runs_recorded.max(self.runs.len() as u64).saturating_add(1);
        run.id = self.runs_recorded;
        self.runs.push(run);
        self.dropped.runs = self.dropped.runs.saturating_add(trim_front(&mut self.runs, MAX_RUNS));
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
    pub fn set_in_progress(&mut self, plan: Plan, next_hop: usize, step: Option<usize>, values: Option<ValuesRecord>) {
        // The summaries of --diff and the values' keys are kept; a full diff may not fit a
        // ConfigMap (1 MiB), and neither it nor the values' view belongs where anyone who
        // reads ConfigMaps reads.
        let plan = plan.for_the_ledger();
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

/// Keep the newest `keep` entries; returns how many were dropped.
fn trim_front<T>(list: &mut Vec<T>, keep: usize) -> u64 {
    let over = list.len().saturating_sub(keep);
    list.drain(..over);
    over as u64
}

/// A record of a newer schema, read entry by entry: what this build cannot read of a
/// run, hop or snapshot is skipped (and counted) rather than failing the whole record.
fn lenient(mut value: serde_json::Value) -> (Ledger, usize) {
    fn entries<T: serde::de::DeserializeOwned>(
        value: &mut serde_json::Value,
        key: &str,
        skipped: &mut usize,
    ) -> Vec<T> {
        let list = value.get_mut(key).map(serde_json::Value::take);
        let items = match list {
            Some(serde_json::Value::Array(items)) => items,
            _ => return vec![],
        };
        let total = items.len();
        let read: Vec<T> = items.into_iter().filter_map(|i| serde_json::from_value(i).ok()).collect();
        *skipped += total - read.len();
        read
    }
    let mut skipped = 0;
    let runs = entries(&mut value, "runs", &mut skipped);
    let hops = entries(&mut value, "hops", &mut skipped);
    let snapshots = entries(&mut value, "snapshots", &mut skipped);
    let text = |key: &str| value.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    let mut ledger = Ledger::new(&text("release"), &text("namespace"));
    ledger.newest_ever = value.get("newest_ever").and_then(|v| serde_json::from_value(v.clone()).ok());
    ledger.chart = value.get("chart").and_then(|v| v.as_str()).map(String::from);
    ledger.policy = value.get("policy").and_then(|v| v.as_str()).map(String::from);
    ledger.lock = value.get("lock").and_then(|v| serde_json::from_value(v.clone()).ok());
    ledger.trimmed = value.get("trimmed").and_then(|v| v.as_str()).map(String::from);
    ledger.dropped = value.get("dropped").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    ledger.runs = runs;
    ledger.hops = hops;
    ledger.snapshots = snapshots;
    (ledger, skipped)
}

#[cfg(test)]
mod tests;
