//! Vendor upgrade policies: the model, loading, validation and the built-in presets.
//!
//! A policy file is YAML. It is read strictly (unknown keys are errors) into the *raw*
//! structs of [`raw`], which keep source positions for everything validation may need to
//! point at; [`load`] then checks what types cannot (procedures that exist, placeholders
//! that resolve, rules that do not contradict each other) and produces the plain
//! [`Policy`] the planner consumes. Every error names file, line and column, shows the
//! line, and says how to fix it.
//!
//! This module reads no files itself except through [`load_from_path`]; the planner only
//! ever sees a validated [`Policy`].

pub mod commands;
mod load;
pub mod presets;
mod raw;
pub mod template;
pub mod times;
pub mod values;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::version::{ChartVersion, Minor};

pub use load::{MAX_POLICY_BYTES, PolicyError, load_named_or_path, parse, parse_from};

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub description: String,
    /// The vendor page the policy encodes.
    pub source: Option<String>,
    /// Chart names this policy applies to when `--policy` is absent.
    pub charts: Vec<String>,
    /// Default chart reference (`repo/name`, `oci://…`, or a directory).
    pub chart: Option<String>,
    /// Release-notes link; `{to}` is replaced by the target version.
    pub release_notes: Option<String>,
    pub upgrade: UpgradeRules,
    pub downgrade: DowngradeRules,
    pub snapshot: SnapshotConfig,
    pub checks: Vec<Check>,
    pub vars: BTreeMap<String, String>,
    pub procedures: BTreeMap<String, Procedure>,
    pub catalog: BTreeMap<ChartVersion, CatalogEntry>,
    /// What versions require of the values (`values:`), in version order.
    pub values: Vec<values::ValueRule>,
    /// `typical_minutes`: how long a hop of each kind (`minor`, `fast-path`, …) takes.
    pub typical: BTreeMap<String, times::TimeRange>,
    /// `notify:`: the program and arguments called with each event of a live run (a JSON
    /// document on stdin), passed exactly as written; `--notify` replaces it.
    pub notify: Option<Vec<String>>,
    /// `versions:`: whether the rules (upgrade and downgrade) count in chart versions or in application
    /// versions (`appVersion`), which the planner translates to and from (its `app_versions`).
    pub versions: VersionSpace,
    /// The policy's YAML exactly as written, for `--show-policy` and the ledger.
    pub text: String,
    /// `sha256:…` of `text`: what a later run compares to know it has the same policy.
    pub digest: String,
    pub origin: Origin,
}

/// Where a policy came from. Every plan says it, and the ledger records it, so that a
/// resumed or repeated run uses the policy the operator chose, not whatever a chart name
/// would pick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// A built-in preset, by name.
    Preset { name: String },
    /// A file the operator named with `--policy`.
    File { path: String },
    /// The copy the ledger kept of a file an earlier run used.
    Recorded { path: String },
    /// Text from elsewhere (tests, a label).
    Text { label: String },
    /// The file a chart package ships, named by its `Chart.yaml` annotation
    /// `helm-safe-upgrade/policy`: untrusted text from the chart's vendor (its commands
    /// need the operator's `--allow-chart-commands`, see [`commands`]).
    Chart { chart: String, version: String, file: String },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Preset { name } => write!(f, "preset {name}"),
            Origin::File { path } => write!(f, "file {path}"),
            Origin::Recorded { path } => write!(f, "the ledger's copy of {path}"),
            Origin::Text { label } => f.write_str(label),
            Origin::Chart { chart, version, file } => write!(f, "chart {chart} {version} ({file})"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct UpgradeRules {
    /// Largest number of minors one hop may advance, counted over the minors that exist.
    pub max_minor_step: u32,
    pub stop_at: StopAt,
    pub major: MajorRule,
    pub required_stops: Vec<RequiredStop>,
    /// `stop_notes`: text the plan warns with when a path stops in that minor.
    pub stop_notes: BTreeMap<Minor, String>,
    /// Take a snapshot (or confirm one) before the first hop.
    pub snapshot_first: bool,
    pub procedure: String,
    pub fast_path: Option<FastPath>,
}

/// What the rules' versions are (upgrade and downgrade alike): the chart's own, or the application's it
/// packages (GitLab publishes its stops as 17.5, 17.8, … while its chart is 8.x).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSpace {
    #[default]
    Chart,
    App,
}

/// Which version of an intermediate minor a path stops at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopAt {
    LatestPatch,
    EarliestPatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MajorRule {
    Refuse,
    OneAtATime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequiredStop {
    /// This exact version.
    Version(ChartVersion),
    /// Some version of this minor (chosen by `stop_at`).
    Minor(Minor),
}

impl std::fmt::Display for RequiredStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequiredStop::Version(v) => write!(f, "{v}"),
            RequiredStop::Minor(m) => write!(f, "{m}.x"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct FastPath {
    /// The fast path is offered only for jumps of at least this many minors.
    pub min_minors: u32,
    pub procedure: String,
}

#[derive(Clone, Debug)]
pub struct DowngradeRules {
    /// Procedure for a downgrade within one minor; `None`: not supported.
    pub patch: Option<String>,
    /// Downgrades to an older minor; `None`: not supported.
    pub minor: Option<MinorDowngrade>,
    /// Procedure that goes back by restoring the snapshot; `None`: no restore path.
    pub restore: Option<String>,
    pub data_loss_warning: Option<String>,
}

#[derive(Clone, Debug)]
pub struct MinorDowngrade {
    /// How many minors below the newest version ever deployed a rollback may go.
    pub max_minors_below_newest: u32,
    pub procedure: String,
}

#[derive(Clone, Debug, Default)]
pub struct SnapshotConfig {
    /// The command that takes a snapshot; `None`: the operator confirms one was taken.
    pub command: Option<Vec<String>>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Check {
    pub name: String,
    pub argv: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Procedure {
    pub downtime: bool,
    pub steps: Vec<StepSpec>,
}

/// A step as the policy writes it; the planner turns it into a concrete plan step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepSpec {
    Deploy { version: VersionRef, set: serde_json::Map<String, serde_json::Value> },
    Verify,
    Snapshot { message: Option<String> },
    Run { name: String, argv: Vec<String> },
    WaitGone { version: VersionRef, selector: String },
    Confirm { message: String },
}

/// Which end of a hop a step refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionRef {
    From,
    To,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CatalogEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// `duration` read: how long a hop to this version takes.
    #[serde(skip)]
    pub time: Option<times::TimeRange>,
}

/// Placeholders a `run` argument, `confirm` message or selector may use.
pub const PLACEHOLDERS: &[&str] = &[
    "release",
    "namespace",
    "chart",
    "from",
    "to",
    "from_schema",
    "to_schema",
    "from_app_version",
    "to_app_version",
    "from_chart_version",
    "to_chart_version",
];

impl Policy {
    pub fn procedure(&self, name: &str) -> &Procedure {
        // Validation guarantees every referenced procedure exists.
        &self.procedures[name]
    }

    /// Whether the policy's own times apply to a release of `chart_name`: any policy the
    /// operator wrote or chose, but a preset only for the charts it lists (the generic
    /// preset picked because nothing matched knows nothing of this chart's times).
    pub fn states_times_for(&self, chart_name: &str, chosen_by_name: bool) -> bool {
        chosen_by_name || !matches!(self.origin, Origin::Preset { .. }) || self.charts.iter().any(|c| c == chart_name)
    }

    /// The catalog entry of a version, if the policy knows it.
    pub fn catalog_entry(&self, version: &ChartVersion) -> Option<&CatalogEntry> {
        self.catalog.get(version)
    }
}
