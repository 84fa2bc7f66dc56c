//! The pure planner: (release state, available versions, policy, request) → a [`Plan`], or
//! a [`Refusal`] that names the broken rule and the supported alternative.
//!
//! No I/O and no clock: everything the planner knows arrives in its arguments, so it can be
//! tested exhaustively. The [`Plan`] it returns is the one value that `--plan` prints,
//! `-o json` serialises and the executor runs.

mod app_space;
pub mod app_versions;
pub mod chart_values;
pub mod document;
pub mod estimate;
mod rollback;
pub mod text;
mod upgrade;
pub mod values;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::template::{self, Filled};
use crate::policy::{Check, Policy, StepSpec, VersionRef};
use crate::version::{ChartVersion, Minor};

pub use rollback::rollback_target;

/// Plan an upgrade: in chart versions, or, for a policy with `versions: app`, in the
/// application versions the charts package ([`app_versions`]). One planner either way.
pub fn plan_upgrade(
    policy: &Policy,
    available: &[Available],
    request: &UpgradeRequest,
    context: &Context,
) -> Result<Plan, PlanError> {
    match policy.versions {
        crate::policy::VersionSpace::App => app_versions::plan_upgrade(policy, available, request, context),
        crate::policy::VersionSpace::Chart => {
            let mut plan = upgrade::plan_upgrade(policy, available, request, context)?;
            stop_notes(policy, &mut plan);
            Ok(plan)
        }
    }
}

/// Plan a rollback: its window counted in chart versions, or, for a policy with
/// `versions: app`, in the application versions the charts package ([`app_versions`]).
pub fn plan_rollback(
    policy: &Policy,
    available: &[Available],
    request: &RollbackRequest,
    context: &Context,
) -> Result<Plan, PlanError> {
    match policy.versions {
        crate::policy::VersionSpace::App => app_versions::plan_rollback(policy, available, request, context),
        crate::policy::VersionSpace::Chart => rollback::plan_rollback(policy, available, request, context, None),
    }
}

/// Whether two chart versions are in one minor as the policy counts: chart minors, or for
/// `versions: app` the minors of the app versions they package (a chart patch may be an
/// app minor). A version whose app version cannot be read is in no minor but its own.
pub fn same_counted_minor(policy: &Policy, available: &[Available], a: &ChartVersion, b: &ChartVersion) -> bool {
    match policy.versions {
        crate::policy::VersionSpace::Chart => a.minor() == b.minor(),
        crate::policy::VersionSpace::App => {
            let app = |v: &ChartVersion| {
                let text = available.iter().find(|x| &x.version == v)?.app_version.as_deref()?;
                app_versions::read_app_version(text).ok()
            };
            matches!((app(a), app(b)), (Some(x), Some(y)) if x.minor() == y.minor())
        }
    }
}

/// The policy's `stop_notes` for each minor the path stops in (its hops' targets): how a
/// vendor's conditional stops ("only for instances with NPM packages") reach the operator.
pub(crate) fn stop_notes(policy: &Policy, plan: &mut Plan) {
    let mut minors: Vec<Minor> = plan.hops.iter().map(|h| h.to.minor()).collect();
    minors.dedup();
    for minor in minors {
        if let Some(note) = policy.upgrade.stop_notes.get(&minor) {
            plan.warnings.push(format!("stop {minor}: {note}"));
        }
    }
}

/// A version a chart source offers, with what the source says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    pub version: ChartVersion,
    pub app_version: Option<String>,
}

impl Available {
    pub fn new(version: ChartVersion) -> Self {
        Available { version, app_version: None }
    }
}

/// Who and where, for placeholders; `None` when planning offline.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub release: Option<String>,
    pub namespace: Option<String>,
    pub chart_name: Option<String>,
    /// Where the policy and the chart source came from, copied into the plan so that
    /// every printed plan says it.
    pub sources: Option<Sources>,
    /// The release's values, when a live run knows them: the policy's value rules are
    /// checked against them.
    pub values: Option<values::ValuesInput>,
    /// This release's past hops (the ledger), oldest first: what estimates learn from.
    pub history: Vec<estimate::PastHop>,
    /// The policy's stated times apply to this release: the operator or the ledger named
    /// the policy, or it lists the release's chart. A preset chosen only because nothing
    /// else matched claims none.
    pub stated_times: bool,
    /// The live release the plan is made from, copied into the plan: what `--execute`
    /// checks is still so. None offline.
    pub made_from: Option<MadeFrom>,
    /// Under `versions: app`, the chart helm deploys for each app version the planner
    /// counts in, for `{from_chart_version}`/`{to_chart_version}` (set by
    /// [`app_versions`]; empty otherwise: the versions planned are the charts).
    pub charts_of_apps: BTreeMap<ChartVersion, ChartVersion>,
}

/// The state of the release a live plan was made from, by digest where it is values: a
/// reviewed plan file (`--plan -o json`, then `--execute`) is walked only while all of
/// this is still so. Never a value: the file is committed to repositories and read in
/// pull requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeFrom {
    /// helm's revision of the release when the plan was made.
    pub revision: u64,
    /// helm's status of that revision (`deployed`, `failed`, …).
    pub status: String,
    /// `sha256:` of the release's user values (canonical JSON, [`crate::digest::json_sha256`]).
    pub values_digest: String,
    /// The chart reference helm is told (`demo/bsr`, `oci://…`), as written: `--execute`
    /// uses it when no `--chart` is given.
    pub chart_reference: String,
    /// `sha256:` of the operator's `-f` files and `--set*` lines, in order; None: none were
    /// given. `--execute` must be given the same ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides_digest: Option<String>,
}

/// Where a plan's inputs came from: the operator sees, before confirming, which policy
/// (and which copy of it) decides and which chart source is deployed from, including
/// anything taken from the ledger (a record others can edit).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// "preset bsr", "file ./my-bsr.yaml", "the ledger's copy of ./my-bsr.yaml".
    pub policy: String,
    pub policy_digest: String,
    /// "demo/bsr (--chart)", "demo/bsr (from the ledger)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Every command a policy shipped in the chart would run (as it writes them,
    /// placeholders unfilled), for the plan to list: the chart's vendor wrote them, the
    /// operator allowed them. Empty for a policy the operator chose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chart_commands: Vec<crate::policy::commands::PolicyCommand>,
}

#[derive(Clone, Debug)]
pub struct UpgradeRequest {
    pub current: ChartVersion,
    pub target: ChartVersion,
    pub fast_path: bool,
    /// Consider pre-release versions (helm's `--devel`).
    pub devel: bool,
}

/// What the tool knows about a snapshot to restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotKnowledge {
    /// Offline planning: the operator will be asked to confirm one exists.
    Unknown,
    /// The ledger recorded none: a restore cannot be planned.
    None,
    /// The ledger recorded a snapshot taken while this version was deployed.
    TakenAt(ChartVersion),
}

#[derive(Clone, Debug)]
pub struct RollbackRequest {
    pub current: ChartVersion,
    pub target: Option<ChartVersion>,
    /// The newest version ever deployed to this release (ledger and history together).
    pub newest_ever: ChartVersion,
    /// Versions that were deployed successfully before, oldest first.
    pub deployed_before: Vec<ChartVersion>,
    pub snapshot: SnapshotKnowledge,
    /// A revision of helm's history that ran the target, to deploy it by
    /// `helm rollback REVISION` rather than `helm upgrade`: the only way to clear a
    /// `pending-*` release, and for a patch rollback whose values still match, exactly
    /// what ran. The caller decides (it needs the release's history); the plan says it.
    pub by_revision: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Upgrade,
    Rollback,
}

impl Direction {
    /// The direction as the plan's JSON, the ledger and the screen name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Rollback => "rollback",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Sequential,
    FastPath,
    Restore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HopKind {
    /// Within one minor.
    Patch,
    /// To a newer minor of the same major.
    Minor,
    /// Across a major boundary.
    Major,
    /// Several minors at once, with downtime (BSR's maintenance mode).
    FastPath,
    /// Back within one minor.
    PatchDowngrade,
    /// Back to an older minor.
    MinorDowngrade,
    /// Back by restoring a snapshot.
    Restore,
}

impl HopKind {
    /// Every kind, in the order the plan's JSON documents them.
    pub const ALL: [HopKind; 7] = [
        HopKind::Patch,
        HopKind::Minor,
        HopKind::Major,
        HopKind::FastPath,
        HopKind::PatchDowngrade,
        HopKind::MinorDowngrade,
        HopKind::Restore,
    ];

    /// The kind as the plan's JSON names it (`patch-downgrade`).
    pub fn as_str(self) -> &'static str {
        match self {
            HopKind::Patch => "patch",
            HopKind::Minor => "minor",
            HopKind::Major => "major",
            HopKind::FastPath => "fast-path",
            HopKind::PatchDowngrade => "patch-downgrade",
            HopKind::MinorDowngrade => "minor-downgrade",
            HopKind::Restore => "restore",
        }
    }

    /// Whether the hop moves the release up (a newer version). Exhaustive, so a new kind says.
    pub fn is_upgrade(self) -> bool {
        match self {
            HopKind::Patch | HopKind::Minor | HopKind::Major | HopKind::FastPath => true,
            HopKind::PatchDowngrade | HopKind::MinorDowngrade | HopKind::Restore => false,
        }
    }

    /// Whether data written since the target may be lost: going below the target's minor
    /// (the schema moves back) or restoring a snapshot. Exhaustive, so a new kind says.
    pub fn may_lose_data(self) -> bool {
        match self {
            HopKind::MinorDowngrade | HopKind::Restore => true,
            HopKind::Patch | HopKind::Minor | HopKind::Major | HopKind::FastPath | HopKind::PatchDowngrade => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The document's format ([`document::SCHEMA`]); 0 in plans kept by versions before
    /// plan files, which cannot be executed.
    #[serde(default)]
    pub schema: u32,
    pub direction: Direction,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Sources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub from: ChartVersion,
    pub to: ChartVersion,
    pub strategy: Strategy,
    pub downtime: bool,
    pub preflight: Vec<Step>,
    pub hops: Vec<Hop>,
    pub alternatives: Vec<Alternative>,
    pub warnings: Vec<String>,
    /// Why the hops were not rendered before the first change (`--no-preflight`,
    /// offline planning); None when every hop was ([`Hop::check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_rendered: Option<String>,
    /// How long the hops are expected to take together ([`estimate`]); None when no hop's
    /// time is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Total>,
    /// The release the plan was made from (live plans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_from: Option<MadeFrom>,
    /// `sha256:` of the document itself ([`document::digest`]), set when a live `--plan`
    /// prints it: `--execute` refuses a file whose content no longer matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub from: ChartVersion,
    pub to: ChartVersion,
    pub kind: HopKind,
    pub downtime: bool,
    pub procedure: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_notes: Option<String>,
    pub steps: Vec<Step>,
    /// The policy's value rules this hop crosses (applied to the carried values from
    /// this hop on; undone, for a rename, going back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<crate::policy::values::ValueRule>,
    /// What the preflight found when it rendered this hop (None: not rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<HopCheck>,
    /// How long it is expected to take, and why ([`estimate`]); None: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Estimate>,
    /// The application versions the hop goes between, when the policy counts in them
    /// (`versions: app`); `from` and `to` stay chart versions, what helm is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppHop>,
}

/// A hop's ends in application versions ([`app_versions`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppHop {
    pub from: ChartVersion,
    pub to: ChartVersion,
}

impl Plan {
    /// The plan without `--diff=full`'s unified diffs (the summaries stay) and without
    /// the views of the values: what the ledger keeps (a ConfigMap holds 1 MiB, and anyone
    /// who reads ConfigMaps reads it, while helm keeps the values in Secrets) and a run's
    /// report carries. Both quote the operator's values (masked where they look secret,
    /// but a host name or an e-mail address is no secret of that shape); they are for
    /// `--plan`, which the operator asked for. The keys and digests stay.
    pub fn for_the_ledger(mut self) -> Plan {
        for check in self.hops.iter_mut().filter_map(|h| h.check.as_mut()) {
            check.values_view = None;
            if let Some(changes) = check.changes.as_mut() {
                changes.unified = None;
            }
        }
        self
    }
}

impl Hop {
    /// The step that leaves the release at this hop's target, with the values the hop
    /// ends with: its last `helm upgrade` to `to`. The preflight renders this step (and
    /// the hop's [`Hop::upgrades`] before it); the walk checks that it deployed the values
    /// the preflight showed.
    pub fn rendered_step(&self) -> Option<usize> {
        self.steps
            .iter()
            .rposition(|s| matches!(s, Step::Deploy { version, revision: None, .. } if *version == self.to))
    }

    /// Every `helm upgrade` of the hop (a deploy that is not a `helm rollback`): its step
    /// index, the version it deploys and the procedure's own `set:`.
    pub fn upgrades(
        &self,
    ) -> impl Iterator<Item = (usize, &ChartVersion, &serde_json::Map<String, serde_json::Value>)> {
        self.steps.iter().enumerate().filter_map(|(n, s)| match s {
            Step::Deploy { version, set, revision: None } => Some((n, version, set)),
            _ => None,
        })
    }
}

/// One hop as the preflight rendered it, before anything changed: the chart archive it
/// deploys and the values helm merged for it, each by digest (the ledger stores the plan,
/// and anyone who reads ConfigMaps in the namespace reads the ledger), the keys of those
/// values, and what the values and the chart say of each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HopCheck {
    /// `sha256:` of the chart archive the hop deploys, from the tool's chart cache.
    pub chart_digest: String,
    /// `sha256:` of the user values helm merged for this hop (canonical JSON): the walk
    /// checks that the hop deployed exactly these.
    pub values_digest: String,
    /// The keys of those values (each leaf's path), never a value: the plan is kept in
    /// the ledger, which anyone who can read ConfigMaps in the namespace reads, and the
    /// ledger holds no value the operator passed, secret-looking or not.
    pub values_keys: Vec<String>,
    /// Those values as the operator may see them: every secret masked (`***`: under a
    /// secret-looking key, shaped like one, or copied from one), the rest as helm merged
    /// it. In `--plan` and `-o json`, never in the ledger ([`Plan::for_the_ledger`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_view: Option<serde_json::Value>,
    /// Keys the chart does not declare (helm ignores them silently), types that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `--diff`: what the hop changes in the rendered manifests and in the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<HopChanges>,
    /// The hop's other deploys, rendered too (BSR's maintenance mode deploys the hop's
    /// start first): each is held to its own chart and values the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_deploys: Vec<DeployCheck>,
}

/// One more deploy of a hop as the preflight rendered it: which step, the version, the
/// chart archive and the values helm merged for it, by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployCheck {
    /// The step's index in the hop's `steps`.
    pub step: usize,
    pub version: ChartVersion,
    pub chart_digest: String,
    pub values_digest: String,
}

impl HopCheck {
    /// The chart and values digests step `step` of `hop` must deploy, when the preflight
    /// rendered that step.
    pub fn for_step(&self, hop: &Hop, step: usize) -> Option<(&str, &str)> {
        if Some(step) == hop.rendered_step() {
            return Some((&self.chart_digest, &self.values_digest));
        }
        self.other_deploys.iter().find(|d| d.step == step).map(|d| (d.chart_digest.as_str(), d.values_digest.as_str()))
    }
}

/// What one hop changes, from the release as the hop finds it to what the hop renders.
/// Names and keys only, secret data masked: the plan is shown, printed as JSON and kept
/// in the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HopChanges {
    pub manifests: crate::diff::ManifestDiff,
    /// The user values that differ, by key (redacted: no value).
    pub values: Vec<crate::diff::ValueChange>,
    /// `--diff=full`: the unified diff of the rendered manifests, masked. Not kept in the
    /// ledger (a ConfigMap holds 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<String>,
}

/// The placeholders of a step's commands that the planner had no value for (a schema or
/// app version the catalog and the chart source do not give; the release, offline). They
/// stay `{name}` in the argv, to show what is missing, but that text cannot tell them
/// from literal braces (`{{release}}` in a policy is the text `{release}`): this list
/// does, and the executor refuses to run a command while it is not empty.
pub type Unfilled = Vec<String>;

/// One action of a plan. `action` names it in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Step {
    /// Preflight: save user values, manifest and metadata before anything changes.
    Backup {
        items: Vec<String>,
    },
    /// `helm upgrade` to `version` with the carried values plus `set`; or, with
    /// `revision`, `helm rollback` to that revision (its own chart and values).
    Deploy {
        version: ChartVersion,
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        set: serde_json::Map<String, serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
    },
    /// The release is deployed at `version` and the policy's checks pass.
    Verify {
        version: ChartVersion,
        checks: Vec<Check>,
        /// Placeholders in the checks' commands that nothing filled in ([`Unfilled`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unfilled: Unfilled,
    },
    /// Run the snapshot command, or have the operator confirm one was taken.
    Snapshot {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        argv: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unfilled: Unfilled,
    },
    Run {
        name: String,
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unfilled: Unfilled,
    },
    /// Wait until no pod of `version` remains.
    WaitGone {
        version: ChartVersion,
        selector: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unfilled: Unfilled,
    },
    Confirm {
        message: String,
    },
}

impl Step {
    /// The action as the plan's JSON names it.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Backup { .. } => "backup",
            Step::Deploy { .. } => "deploy",
            Step::Verify { .. } => "verify",
            Step::Snapshot { .. } => "snapshot",
            Step::Run { .. } => "run",
            Step::WaitGone { .. } => "wait-gone",
            Step::Confirm { .. } => "confirm",
        }
    }

    /// Whether the step changes the release or the cluster: the executor records each
    /// such step in the ledger (proving it still holds the lock) before it starts.
    pub fn changes_something(&self) -> bool {
        match self {
            Step::Deploy { .. } | Step::Run { .. } => true,
            Step::Snapshot { argv, .. } => argv.is_some(),
            Step::Backup { .. } | Step::Verify { .. } | Step::WaitGone { .. } | Step::Confirm { .. } => false,
        }
    }

    /// Whether the step waits for the operator (a confirmation, a snapshot nobody can
    /// take by command): on a terminal it asks; unattended it needs a flag or is refused.
    pub fn asks_operator(&self) -> bool {
        match self {
            Step::Confirm { .. } => true,
            Step::Snapshot { argv, .. } => argv.is_none(),
            Step::Backup { .. }
            | Step::Deploy { .. }
            | Step::Verify { .. }
            | Step::Run { .. }
            | Step::WaitGone { .. } => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub strategy: Strategy,
    pub hops: usize,
    pub downtime: bool,
    /// The flag that selects it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    pub summary: String,
    /// Its hops, as far as their time goes: estimated on the same terms as the plan's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<estimate::Leg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Total>,
}

/// Why a request was refused: the rule, what was asked, and what is supported instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub rule: String,
    pub message: String,
    pub supported: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The policy forbids what was asked (exit 3).
    #[error("refused by policy: {}\nrule: {}\nsupported: {}", .0.message, .0.rule, .0.supported)]
    Refused(Refusal),
    /// The request itself is wrong (exit 2).
    #[error("{message}\nhint: {hint}")]
    BadRequest { message: String, hint: String },
}

pub(crate) fn refuse(rule: &str, message: impl Into<String>, supported: impl Into<String>) -> PlanError {
    PlanError::Refused(Refusal { rule: rule.to_string(), message: message.into(), supported: supported.into() })
}

pub(crate) fn bad_request(message: impl Into<String>, hint: impl Into<String>) -> PlanError {
    PlanError::BadRequest { message: message.into(), hint: hint.into() }
}

/// The versions a plan may stop at: releases, plus pre-releases only under `--devel` or
/// when asked for by name, deduplicated and sorted.
pub(crate) fn candidate_versions(available: &[Available], devel: bool, named: &[&ChartVersion]) -> Vec<Available> {
    let mut out: Vec<Available> = available
        .iter()
        .filter(|a| devel || !a.version.is_prerelease() || named.contains(&&a.version))
        .cloned()
        .collect();
    out.sort_by(|a, b| a.version.cmp(&b.version));
    out.dedup_by(|a, b| a.version == b.version);
    out
}

/// How many versions a "not available" hint names at most.
const LISTED_IN_HINT: usize = 10;

/// The exact version a `--to` means. A minor (`--to 1.3`) is not guessed: the operator
/// is shown the versions of that minor the source offers and picks one.
pub fn exact_target(spec: &crate::version::VersionSpec, available: &[Available]) -> Result<ChartVersion, PlanError> {
    match spec {
        crate::version::VersionSpec::Exact(v) => Ok(v.clone()),
        crate::version::VersionSpec::Minor(minor) => {
            let mut offered: Vec<&ChartVersion> =
                available.iter().map(|a| &a.version).filter(|v| v.minor() == *minor).collect();
            offered.sort();
            offered.dedup();
            match offered.last() {
                None => Err(bad_request(
                    format!("--to {minor} names a minor, and the chart source offers no {minor}.x version"),
                    "pass an exact version, e.g. --to 1.2.3; `--plan` with another --to lists what is offered",
                )),
                Some(newest) => Err(bad_request(
                    format!("--to {minor} names a minor, not a version"),
                    format!(
                        "the chart source offers {}: pass one, e.g. --to {newest} (the newest)",
                        offered.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
    }
}

/// A nearby-versions hint for "not available" errors; `available` is sorted.
pub(crate) fn nearest_listing(available: &[Available], around: &ChartVersion) -> String {
    let same_minor: Vec<&Available> = available.iter().filter(|a| a.version.minor() == around.minor()).collect();
    if !same_minor.is_empty() {
        // A minor can hold thousands of versions; the newest few are the useful ones.
        let skipped = same_minor.len().saturating_sub(LISTED_IN_HINT);
        let shown: Vec<String> = same_minor[skipped..].iter().map(|a| a.version.to_string()).collect();
        let more = if skipped > 0 { format!("{} older, ", text::thousands(skipped as u64)) } else { String::new() };
        return format!("available in {}: {more}{}", around.minor(), shown.join(", "));
    }
    let newest: Vec<String> = available.iter().rev().take(5).map(|a| a.version.to_string()).collect();
    if newest.is_empty() {
        "the chart source lists no versions".to_string()
    } else {
        format!("newest available: {}", newest.join(", "))
    }
}

/// How to add `version`'s schema to the catalog, where the operator is: the fix depends on
/// where the policy came from. A preset cannot be edited (it is built in), so it is copied
/// out first; a file of the operator's is edited in place; a chart's policy is the
/// vendor's to fix, and meanwhile a copy taken out of the chart package is edited.
fn catalog_fix(policy: &Policy, version: &ChartVersion) -> String {
    use crate::policy::Origin;
    let entry = format!("`{{version: {version}, schema: <schema>}}`");
    let notes = "the vendor's release notes list schema versions";
    match &policy.origin {
        Origin::File { path } => {
            format!("add {entry} to the catalog of {path} ({notes}) and run again with --policy {path}")
        }
        // No --policy was given: the run took the policy the ledger recorded.
        Origin::Recorded { path } => format!(
            "this run used the ledger's copy of {path}, the policy an earlier run was given: add {entry} to the catalog of {path} ({notes}) and run again with --policy {path}"
        ),
        Origin::Chart { chart, version: chart_version, file } => format!(
            "the policy is the one chart {chart} {chart_version} ships ({file}): ask its vendor to add {entry}; meanwhile take the chart out (`helm pull` it with --version {chart_version} --untar), add the entry to {chart}/{file} ({notes}), and run again with --policy {chart}/{file}"
        ),
        Origin::Preset { name } => format!(
            "preset {name} is built in: copy it (`helm safe-upgrade --show-policy {name} > {name}.yaml`), add {entry} to the copy's catalog ({notes}), and run again with --policy {name}.yaml"
        ),
        Origin::Text { label } => format!(
            "add {entry} to the catalog of the policy {label} ({notes}) and run again with --policy and that file"
        ),
    }
}

/// Turns policy step specs into concrete steps for one hop, filling placeholders.
pub(crate) struct StepBuilder<'a> {
    pub policy: &'a Policy,
    pub context: &'a Context,
    /// Sorted, one entry per version, as [`candidate_versions`] returns them: looked up
    /// once per hop, so by binary search.
    pub available: &'a [Available],
}

impl StepBuilder<'_> {
    fn app_version(&self, v: &ChartVersion) -> Option<String> {
        self.policy.catalog_entry(v).and_then(|e| e.app_version.clone()).or_else(|| {
            let found = self.available.binary_search_by(|a| a.version.cmp(v)).ok()?;
            self.available[found].app_version.clone()
        })
    }

    fn values(&self, from: &ChartVersion, to: &ChartVersion) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                values.insert(k.to_string(), v);
            }
        };
        put("release", self.context.release.clone());
        put("namespace", self.context.namespace.clone());
        put("chart", self.context.chart_name.clone());
        put("from", Some(from.to_string()));
        put("to", Some(to.to_string()));
        put("from_schema", self.policy.catalog_entry(from).and_then(|e| e.schema.clone()));
        put("to_schema", self.policy.catalog_entry(to).and_then(|e| e.schema.clone()));
        put("from_app_version", self.app_version(from));
        put("to_app_version", self.app_version(to));
        let chart_of = |v: &ChartVersion| self.context.charts_of_apps.get(v).unwrap_or(v).to_string();
        put("from_chart_version", Some(chart_of(from)));
        put("to_chart_version", Some(chart_of(to)));
        for (k, v) in &self.policy.vars {
            values.insert(format!("var.{k}"), v.clone());
        }
        values
    }

    /// The steps of `procedure` for the hop `from → to`. Fails when a step needs a value
    /// the planner cannot know and the tool must not guess (a schema version).
    pub fn steps(&self, procedure: &str, from: &ChartVersion, to: &ChartVersion) -> Result<Vec<Step>, PlanError> {
        // Built on first use: a plain deploy-and-verify hop fills nothing, and a plan over
        // thousands of offered versions has thousands of such hops.
        let lazy_values = std::cell::OnceCell::new();
        let values = || lazy_values.get_or_init(|| self.values(from, to));
        let pick = |r: VersionRef| match r {
            VersionRef::From => from.clone(),
            VersionRef::To => to.clone(),
        };
        let mut steps = Vec::new();
        for spec in &self.policy.procedure(procedure).steps {
            steps.push(match spec {
                StepSpec::Deploy { version, set } => Step::Deploy { version: pick(*version), set: set.clone(), revision: None },
                // A verify checks the version the last deploy step installed.
                StepSpec::Verify => self.verify(last_deployed(&steps).unwrap_or_else(|| to.clone()), values),
                StepSpec::Snapshot { message } => self.snapshot(message.as_deref(), values()),
                StepSpec::Run { name, argv } => {
                    let (argv, unfilled) = fill_argv(argv, values());
                    for needed in ["to_schema", "from_schema"] {
                        if unfilled.iter().any(|u| u == needed) {
                            let version = if needed == "to_schema" { to } else { from };
                            return Err(refuse(
                                "catalog-schema",
                                format!(
                                    "step {name:?} needs the database schema version of {version}, and policy {} does not list it",
                                    self.policy.name
                                ),
                                catalog_fix(self.policy, version),
                            ));
                        }
                    }
                    Step::Run { name: name.clone(), argv, unfilled }
                }
                StepSpec::WaitGone { version, selector } => {
                    let v = pick(*version);
                    let mut with_version = values().clone();
                    with_version.insert("version".into(), v.to_string());
                    let Filled { text, unfilled } = fill(selector, &with_version);
                    Step::WaitGone { selector: text, version: v, unfilled }
                }
                StepSpec::Confirm { message } => Step::Confirm { message: fill(message, values()).text },
            });
        }
        Ok(steps)
    }

    /// Verify `version` with the policy's checks, filled with `values` (asked for only when
    /// there are checks).
    fn verify<'v>(&self, version: ChartVersion, values: impl Fn() -> &'v BTreeMap<String, String>) -> Step {
        let mut unfilled = Unfilled::new();
        let checks = self
            .policy
            .checks
            .iter()
            .map(|check| {
                let (argv, holes) = fill_argv(&check.argv, values());
                add_once(&mut unfilled, holes);
                Check { name: check.name.clone(), argv }
            })
            .collect();
        Step::Verify { version, checks, unfilled }
    }

    /// A snapshot by the policy's command (or the operator), `message` standing in for the
    /// policy's.
    fn snapshot(&self, message: Option<&str>, values: &BTreeMap<String, String>) -> Step {
        let message = fill(message.unwrap_or(&self.policy.snapshot.message), values).text;
        match &self.policy.snapshot.command {
            Some(argv) => {
                let (argv, unfilled) = fill_argv(argv, values);
                Step::Snapshot { message, argv: Some(argv), unfilled }
            }
            None => Step::Snapshot { message, argv: None, unfilled: vec![] },
        }
    }

    /// The snapshot a policy takes before anything changes (`snapshot_first`), filled as
    /// for a hop from the deployed version to the plan's target.
    pub fn first_snapshot(&self, current: &ChartVersion, target: &ChartVersion) -> Step {
        self.snapshot(None, &self.values(current, target))
    }

    pub fn release_notes(&self, to: &ChartVersion) -> Option<String> {
        self.policy
            .catalog_entry(to)
            .and_then(|e| e.notes.clone())
            .or_else(|| self.policy.release_notes.as_ref().map(|t| fill(t, &self.values(to, to)).text))
    }
}

/// The verify step of a way back the executor puts together itself (redeploying the
/// version a hop left, without the hop's value overrides): the policy's checks filled in
/// as a planned way back from `from` to `to` fills them.
pub fn way_back_verify(
    policy: &Policy,
    available: &[Available],
    context: &Context,
    from: &ChartVersion,
    to: &ChartVersion,
) -> Step {
    let candidates = candidate_versions(available, true, &[]);
    let builder = StepBuilder { policy, context, available: &candidates };
    let values = builder.values(from, to);
    builder.verify(to.clone(), || &values)
}

fn last_deployed(steps: &[Step]) -> Option<ChartVersion> {
    steps.iter().rev().find_map(|s| match s {
        Step::Deploy { version, .. } => Some(version.clone()),
        _ => None,
    })
}

/// Fill a policy template ([`crate::policy::template`]: `{name}` filled in, `{{` and `}}`
/// literal braces). A placeholder without a value stays `{name}`, so an offline plan shows
/// what a live run fills in, and is named in [`Filled::unfilled`].
pub(crate) fn fill(template: &str, values: &BTreeMap<String, String>) -> Filled {
    template::fill(template, |name| values.get(name).map(String::as_str))
}

/// Fill each element of a command; the placeholders left unfilled in any of them, once.
fn fill_argv(argv: &[String], values: &BTreeMap<String, String>) -> (Vec<String>, Unfilled) {
    let mut unfilled = Unfilled::new();
    let argv = argv
        .iter()
        .map(|arg| {
            let Filled { text, unfilled: holes } = fill(arg, values);
            add_once(&mut unfilled, holes);
            text
        })
        .collect();
    (argv, unfilled)
}

fn add_once(unfilled: &mut Unfilled, names: Vec<String>) {
    for name in names {
        if !unfilled.contains(&name) {
            unfilled.push(name);
        }
    }
}

/// The preflight every plan starts with: a backup of what helm knows about the release.
pub(crate) fn backup_step() -> Step {
    Step::Backup { items: vec!["user values".into(), "manifest".into(), "release metadata".into()] }
}

/// How many minors apart two versions are within one major (numeric distance).
pub(crate) fn minor_distance(lower: Minor, upper: Minor) -> u64 {
    debug_assert_eq!(lower.major, upper.major);
    upper.minor.saturating_sub(lower.minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_known_and_keeps_unknown() {
        let mut values = BTreeMap::new();
        values.insert("to_schema".to_string(), "222".to_string());
        assert_eq!(fill("migratedownto {to_schema}", &values).text, "migratedownto 222");
        let kept = fill("{release}-x", &values);
        assert_eq!((kept.text.as_str(), kept.unfilled), ("{release}-x", vec!["release".to_string()]));
        assert_eq!(fill("no braces", &values).text, "no braces");
        assert_eq!(fill("jsonpath={{.status.schema}}={to_schema}", &values).text, "jsonpath={.status.schema}=222");
    }

    /// The `catalog-schema` refusal of a down-migration to 1.2.6 (no schema in the bsr
    /// preset's catalog), with the preset's text loaded as if it came from `origin`.
    fn catalog_schema_refusal(origin: crate::policy::Origin) -> Refusal {
        let text = crate::policy::presets::text("bsr").unwrap();
        let policy = crate::policy::parse_from(text, origin).unwrap();
        let v = |s: &str| ChartVersion::parse(s).unwrap();
        let available: Vec<Available> =
            ["1.1.9", "1.2.6", "1.3.0"].iter().map(|s| Available { version: v(s), app_version: None }).collect();
        let request = RollbackRequest {
            current: v("1.3.0"),
            target: Some(v("1.2.6")),
            newest_ever: v("1.3.0"),
            deployed_before: vec![],
            snapshot: SnapshotKnowledge::Unknown,
            by_revision: None,
        };
        let context = Context { release: Some("bsr".into()), namespace: Some("bsr".into()), ..Context::default() };
        match plan_rollback(&policy, &available, &request, &context) {
            Err(PlanError::Refused(refusal)) => {
                assert_eq!(refusal.rule, "catalog-schema", "{refusal:?}");
                assert!(refusal.message.contains("schema version of 1.2.6"), "{refusal:?}");
                refusal
            }
            other => panic!("not refused by catalog-schema: {other:?}"),
        }
    }

    #[test]
    fn the_catalog_schema_hint_for_a_preset_copies_it_out_first() {
        let hint = catalog_schema_refusal(crate::policy::Origin::Preset { name: "bsr".into() }).supported;
        assert_eq!(
            hint,
            "preset bsr is built in: copy it (`helm safe-upgrade --show-policy bsr > bsr.yaml`), add `{version: 1.2.6, schema: <schema>}` to the copy's catalog (the vendor's release notes list schema versions), and run again with --policy bsr.yaml"
        );
    }

    #[test]
    fn the_catalog_schema_hint_for_the_operators_file_edits_that_file() {
        let hint = catalog_schema_refusal(crate::policy::Origin::File { path: "/ops/bsr-prod.yaml".into() }).supported;
        assert_eq!(
            hint,
            "add `{version: 1.2.6, schema: <schema>}` to the catalog of /ops/bsr-prod.yaml (the vendor's release notes list schema versions) and run again with --policy /ops/bsr-prod.yaml"
        );
        assert!(!hint.contains("--show-policy"), "a file is not a preset: {hint}");
        let hint =
            catalog_schema_refusal(crate::policy::Origin::Recorded { path: "/ops/bsr-prod.yaml".into() }).supported;
        assert!(hint.starts_with("this run used the ledger's copy of /ops/bsr-prod.yaml"), "{hint}");
        assert!(hint.ends_with("and run again with --policy /ops/bsr-prod.yaml"), "{hint}");
    }

    #[test]
    fn the_catalog_schema_hint_for_a_charts_policy_names_the_vendor_and_the_untarred_copy() {
        let origin = crate::policy::Origin::Chart {
            chart: "bsr".into(),
            version: "1.3.0".into(),
            file: "upgrade-policy.yaml".into(),
        };
        let hint = catalog_schema_refusal(origin).supported;
        assert!(hint.starts_with("the policy is the one chart bsr 1.3.0 ships (upgrade-policy.yaml): ask its vendor to add `{version: 1.2.6, schema: <schema>}`"), "{hint}");
        // `helm pull --untar` puts the chart's files under a directory named after it.
        assert!(hint.contains("--version 1.3.0 --untar"), "{hint}");
        assert!(hint.ends_with("run again with --policy bsr/upgrade-policy.yaml"), "{hint}");
        assert!(!hint.contains("--show-policy"), "a chart's policy is not a preset: {hint}");
    }

    #[test]
    fn the_catalog_schema_hint_for_other_text_does_not_send_to_a_preset() {
        let hint = catalog_schema_refusal(crate::policy::Origin::Text { label: "my-bsr".into() }).supported;
        assert!(hint.contains("the catalog of the policy my-bsr"), "{hint}");
        assert!(!hint.contains("--show-policy"), "{hint}");
    }

    #[test]
    fn an_argv_names_each_unfilled_placeholder_once() {
        let values = BTreeMap::from([("release".to_string(), "bsr".to_string())]);
        let argv: Vec<String> = ["{release}", "{{to}}", "{to}", "{namespace}/{to}"].map(String::from).into();
        let (filled, unfilled) = fill_argv(&argv, &values);
        assert_eq!(filled, ["bsr", "{to}", "{to}", "{namespace}/{to}"]);
        assert_eq!(unfilled, ["to", "namespace"], "the escaped {{{{to}}}} is text, not a hole");
    }
}
